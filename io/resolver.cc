#include "io/resolver.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <csignal>
#include <cstring>

namespace sluice {

struct Resolver::Request {
  std::string host;
  addrinfo hints{};
  gaicb cb{};
  gaicb* list[1] = {&cb};
};

namespace {
void set_port(sockaddr_storage& ss, uint16_t port) {
  if (ss.ss_family == AF_INET) reinterpret_cast<sockaddr_in*>(&ss)->sin_port = htons(port);
  if (ss.ss_family == AF_INET6) reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port = htons(port);
}
}  // namespace

Resolver::~Resolver() { abandon(); }

// A lookup still running keeps its request: glibc's helper thread writes
// into it when it ends, so it is cancelled if possible and otherwise left
// behind (a few hundred bytes, once per abandoned lookup).
void Resolver::abandon() {
  if (request_ == nullptr) return;
  if (state_ == State::resolving && gai_cancel(&request_->cb) != EAI_CANCELED &&
      gai_error(&request_->cb) == EAI_INPROGRESS) {
    request_ = nullptr;  // left to the helper thread
    return;
  }
  if (request_->cb.ar_result != nullptr) freeaddrinfo(request_->cb.ar_result);
  delete request_;
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
