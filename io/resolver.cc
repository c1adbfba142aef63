#include "io/resolver.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <csignal>
#include <cstring>
#include <mutex>
#include <vector>

namespace sluice {

struct Resolver::Request {
  std::string host;
  addrinfo hints{};
  gaicb cb{};
  gaicb* list[1] = {&cb};
};

namespace {

void free_request(Resolver::Request* r) {
  if (r->cb.ar_result != nullptr) freeaddrinfo(r->cb.ar_result);
  delete r;
}

void set_port(sockaddr_storage& ss, uint16_t port) {
  if (ss.ss_family == AF_INET) reinterpret_cast<sockaddr_in*>(&ss)->sin_port = htons(port);
  if (ss.ss_family == AF_INET6) reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port = htons(port);
}

// Requests whose lookup was still running when their resolver let go of
// them: glibc's helper thread writes into them when it ends, so they are
// kept here (reachable, not leaked) and freed by the next resolver that
// abandons or starts a lookup once they have finished. Control path only
// (a lookup per connection attempt), hence the mutex.
struct Abandoned {
  std::mutex mu;
  std::vector<Resolver::Request*> requests;
};
Abandoned& abandoned() {
  static auto* a = new Abandoned;  // never destroyed: helper threads may outlive statics
  return *a;
}

size_t reap_and_keep(Resolver::Request* add) {
  Abandoned& a = abandoned();
  std::lock_guard lock(a.mu);
  auto& v = a.requests;
  for (size_t i = 0; i < v.size();) {
    if (gai_error(&v[i]->cb) != EAI_INPROGRESS) {
      free_request(v[i]);
      v[i] = v.back();
      v.pop_back();
    } else {
      ++i;
    }
  }
  if (add != nullptr) v.push_back(add);
  return v.size();
}

}  // namespace

Resolver::~Resolver() { abandon(); }

size_t Resolver::reap_abandoned() { return reap_and_keep(nullptr); }

// A lookup still running keeps its request: it is cancelled if possible and
// otherwise handed to the abandoned list until the helper thread is done.
void Resolver::abandon() {
  if (request_ == nullptr) {
    reap_and_keep(nullptr);
    return;
  }
  if (state_ == State::resolving && gai_cancel(&request_->cb) != EAI_CANCELED &&
      gai_error(&request_->cb) == EAI_INPROGRESS) {
    reap_and_keep(request_);
    request_ = nullptr;
    return;
  }
  free_request(request_);
  request_ = nullptr;
}

Resolver::State Resolver::start(const std::string& host, uint16_t port) {
  abandon();
  port_ = port;
  error_.clear();
  std::memset(&addr_, 0, sizeof addr_);
  auto* v4 = reinterpret_cast<sockaddr_in*>(&addr_);
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&addr_);
  if (inet_pton(AF_INET, host.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(port);
    addr_len_ = sizeof *v4;
    return state_ = State::done;
  }
  if (inet_pton(AF_INET6, host.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(port);
    addr_len_ = sizeof *v6;
    return state_ = State::done;
  }
  request_ = new Request;
  request_->host = host;
  request_->hints.ai_socktype = SOCK_STREAM;
  request_->cb.ar_name = request_->host.c_str();
  request_->cb.ar_request = &request_->hints;
  sigevent none{};
  none.sigev_notify = SIGEV_NONE;
  if (int rc = getaddrinfo_a(GAI_NOWAIT, request_->list, 1, &none); rc != 0) {
    error_ = gai_strerror(rc);
    delete request_;
    request_ = nullptr;
    return state_ = State::failed;
  }
  return state_ = State::resolving;
}

Resolver::State Resolver::poll() {
  if (state_ != State::resolving) return state_;
  const int rc = gai_error(&request_->cb);
  if (rc == EAI_INPROGRESS) return state_;
  if (rc != 0 || request_->cb.ar_result == nullptr) {
    error_ = rc != 0 ? gai_strerror(rc) : "no address";
    state_ = State::failed;
  } else {
    const addrinfo* ai = request_->cb.ar_result;
    std::memcpy(&addr_, ai->ai_addr, ai->ai_addrlen);
    addr_len_ = socklen_t(ai->ai_addrlen);
    set_port(addr_, port_);
    state_ = State::done;
  }
  abandon();  // finished: freed
  return state_;
}

}  // namespace sluice
