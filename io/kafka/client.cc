#include "io/kafka/client.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include <fmt/format.h>

#include "core/log.h"
#include "operators/framing.h"

namespace sluice::kafka {

namespace {
// Reconnect back-off: doubles from min to max while a broker stays unreachable.
constexpr int64_t kBackoffMinNs = 100 * kNsPerMs;
constexpr int64_t kBackoffMaxNs = 10 * kNsPerS;
// A request without a response for this long (beyond the broker's own
// max_wait) is given up: the connection is dropped and the work retried.
constexpr int64_t kRequestTimeoutNs = 30 * kNsPerS;
// The tag of the client's own ApiVersions request (users' tags are > 0 and
// small: they never reach it).
constexpr uint32_t kApiVersionsTag = UINT32_MAX;
}  // namespace

Client::Client(Reactor& reactor, ClientUser& user, ClientOptions options)
    : reactor_(reactor), user_(user), options_(std::move(options)) {}

Client::~Client() {
  for (auto& c : conns_) {
    if (c->fd_ >= 0) ::close(c->fd_);
  }
}

Connection& Client::add(int32_t node_id) {
  auto c = std::make_unique<Connection>();
  c->index_ = uint32_t(conns_.size());
  c->node_id = node_id;
  c->backoff_ns_ = kBackoffMinNs;
  for (uint32_t i = 0; i < 2; ++i) c->bufs_[i].slot = i;
  c->connect_done_.bind<&Client::on_connect_done>(this, c->index_);
  c->send_done_.bind<&Client::on_send_done>(this, c->index_);
  c->recv_done_.bind<&Client::on_recv_done>(this, c->index_);
  conns_.push_back(std::move(c));
  return *conns_.back();
}

Connection* Client::find(int32_t node_id) {
  for (auto& c : conns_) {
    if (c->node_id == node_id) return c.get();
  }
  return nullptr;
}

// ---------------------------------------------------------------------------
// Connecting

void Client::connect(Connection& c) {
  if (user_.quiet()) return;
  // A name is looked up without blocking the shard; poll() goes on once it is known.
  if (c.resolver_.start(c.host, c.port) == Resolver::State::resolving) {
    c.state_ = Connection::State::resolving;
    c.deadline_ = reactor_.now() + kRequestTimeoutNs;
    return;
  }
  connect_resolved(c);
}

void Client::connect_resolved(Connection& c) {
  if (c.resolver_.state() != Resolver::State::done) {
    log_warn("{}: cannot resolve broker {}:{}: {}", options_.log_name, c.host, c.port, c.resolver_.error());
    c.state_ = Connection::State::backoff;
    c.retry_at_ = reactor_.now() + c.backoff_ns_;
    c.backoff_ns_ = std::min(c.backoff_ns_ * 2, kBackoffMaxNs);
    return;
  }
  c.fd_ = ::socket(c.resolver_.address().ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (c.fd_ < 0) {
    log_warn("{}: socket: {}", options_.log_name, std::strerror(errno));
    c.state_ = Connection::State::backoff;
    c.retry_at_ = reactor_.now() + c.backoff_ns_;
    return;
  }
  int one = 1;
  setsockopt(c.fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  c.state_ = Connection::State::connecting;
  c.tag_ = 0;
  c.out_.clear();
  c.sent_ = 0;
  c.receiving_ = -1;
  c.held_n_ = 0;
  for (ResponseBuffer& b : c.bufs_) {
    b.state = ResponseBuffer::State::free;
    b.len = 0;
  }
  c.api_versions_version_ = kApiVersionsVersions.max;
  c.deadline_ = reactor_.now() + kRequestTimeoutNs;
  io_uring_sqe* sqe = reactor_.sqe();
  io_uring_prep_connect(sqe, c.fd_, reinterpret_cast<const sockaddr*>(&c.resolver_.address()),
                        c.resolver_.address_length());
  io_uring_sqe_set_data64(sqe, c.connect_done_.user_data());
  ++c.ops_;
}

// Gives up on a connection: its user re-plans what it carried, and it
// reconnects after a back-off (if it is still wanted then).
void Client::drop(Connection& c, const char* why) {
  using S = Connection::State;
  if (c.state_ == S::closing || c.state_ == S::closed || c.state_ == S::backoff) return;
  if (!user_.quiet()) {
    log_warn("{}: broker {} ({}:{}): {}; reconnecting in {} ms", options_.log_name,
             c.node_id < 0 ? std::string("bootstrap") : std::to_string(c.node_id), c.host, c.port, why,
             c.backoff_ns_ / kNsPerMs);
  }
  c.state_ = S::closing;
  c.tag_ = 0;
  c.deadline_ = kTimeMax;
  // Responses received but not yet used go with the connection: the user
  // re-plans from what it had delivered, so nothing is lost.
  c.held_n_ = 0;
  for (ResponseBuffer& b : c.bufs_) {
    if (b.state != ResponseBuffer::State::receiving) b.state = ResponseBuffer::State::free;
  }
  user_.on_drop(c);
  if (c.fd_ >= 0) ::shutdown(c.fd_, SHUT_RDWR);  // completes what is pending on it
  if (c.ops_ == 0) finish_close(c);
}

void Client::close_all() {
  for (auto& c : conns_) {
    if (c->state_ == Connection::State::backoff) {
      c->state_ = Connection::State::closed;
    } else {
      drop(*c, "stopping");
    }
  }
}

void Client::finish_close(Connection& c) {
  if (c.fd_ >= 0) ::close(c.fd_);
  c.fd_ = -1;
  for (ResponseBuffer& b : c.bufs_) b.state = ResponseBuffer::State::free;
  c.receiving_ = -1;
  c.state_ = Connection::State::backoff;
  c.retry_at_ = reactor_.now() + c.backoff_ns_;
  c.backoff_ns_ = std::min(c.backoff_ns_ * 2, kBackoffMaxNs);
}

// ---------------------------------------------------------------------------
// Requests and responses

void Client::request(Connection& c) {
  using S = Connection::State;
  if (c.tag_ != 0 || user_.quiet()) return;
  if (c.state_ != S::negotiating && c.state_ != S::ready) return;
  int free_buf = -1;
  for (int i = 0; i < 2; ++i) {
    if (c.bufs_[i].state == ResponseBuffer::State::free) free_buf = i;
  }
  if (free_buf < 0) return;  // both hold responses not yet used: back-pressure
  c.out_.clear();
  c.sent_ = 0;
  Writer w(c.out_);
  const int32_t correlation = ++correlation_;
  int64_t wait_ns = 0;
  uint32_t tag = 0;
  if (c.state_ == S::negotiating) {
    if (encode_api_versions_request(w, c.api_versions_version_, correlation, options_.client_id) !=
        EncodeStatus::ok) {
      return;
    }
    tag = kApiVersionsTag;
  } else {
    tag = user_.next_request(c, w, correlation, wait_ns);
  }
  if (tag == 0) return;
  c.tag_ = tag;
  c.correlation_ = correlation;
  c.receiving_ = free_buf;
  ResponseBuffer& b = c.bufs_[free_buf];
  b.state = ResponseBuffer::State::receiving;
  b.len = 0;
  c.deadline_ = reactor_.now() + wait_ns + kRequestTimeoutNs;
  send(c);
}

void Client::send(Connection& c) {
  io_uring_sqe* sqe = reactor_.sqe();
  io_uring_prep_send(sqe, c.fd_, c.out_.data() + c.sent_, c.out_.size() - c.sent_, MSG_NOSIGNAL);
  io_uring_sqe_set_data64(sqe, c.send_done_.user_data());
  ++c.ops_;
}

void Client::arm_recv(Connection& c) {
  ResponseBuffer& b = c.bufs_[c.receiving_];
  if (!b.data) {
    // Allocated on first use: a connection that only ever carries Metadata
    // still needs room for it, but most brokers never lead a user's partitions.
    b.cap = options_.response_bytes_max;
    b.data.reset(new uint8_t[b.cap + kLinePadding]);
    std::memset(b.data.get() + b.cap, 0, kLinePadding);
  }
  io_uring_sqe* sqe = reactor_.sqe();
  io_uring_prep_recv(sqe, c.fd_, b.data.get() + b.len, b.cap - b.len, 0);
  io_uring_sqe_set_data64(sqe, c.recv_done_.user_data());
  ++c.ops_;
}

bool Client::op_done(Connection& c) {
  --c.ops_;
  if (c.state_ != Connection::State::closing) return true;
  if (c.ops_ == 0) finish_close(c);
  return false;
}

void Client::on_connect_done(uint32_t index, const io_uring_cqe& cqe) {
  Connection& c = *conns_[index];
  if (!op_done(c)) return;
  if (cqe.res < 0) {
    drop(c, std::strerror(-cqe.res));
    return;
  }
  c.state_ = Connection::State::negotiating;
  request(c);
}

void Client::on_send_done(uint32_t index, const io_uring_cqe& cqe) {
  Connection& c = *conns_[index];
  if (!op_done(c)) return;
  if (cqe.res < 0) {
    drop(c, std::strerror(-cqe.res));
    return;
  }
  c.sent_ += size_t(cqe.res);
  if (c.sent_ < c.out_.size()) {
    send(c);
    return;
  }
  arm_recv(c);
}

void Client::on_recv_done(uint32_t index, const io_uring_cqe& cqe) {
  Connection& c = *conns_[index];
  if (!op_done(c)) return;
  if (cqe.res <= 0) {
    drop(c, cqe.res == 0 ? "connection closed by the broker" : std::strerror(-cqe.res));
    return;
  }
  ResponseBuffer& b = c.bufs_[c.receiving_];
  b.len += size_t(cqe.res);
  size_t body = 0;
  const FrameStatus fs = peek_response_frame({b.data.get(), b.len}, b.cap - 4, body);
  if (fs == FrameStatus::need_more) {
    arm_recv(c);
    return;
  }
  if (fs == FrameStatus::bad_size || b.len != 4 + body) {
    drop(c, fs == FrameStatus::bad_size ? "response larger than the buffer (raise max_bytes) or malformed"
                                        : "broker sent bytes beyond the response");
    return;
  }
  on_response(c, b);
}

void Client::on_response(Connection& c, ResponseBuffer& b) {
  Reader r(b.data.get() + 4, b.len - 4);
  int32_t correlation = 0;
  if (!decode_response_header(r, correlation) || correlation != c.correlation_) {
    drop(c, "response out of order (correlation id mismatch)");
    return;
  }
  const uint32_t tag = c.tag_;
  c.tag_ = 0;
  // A broker that answers real requests is healthy again (a handshake alone
  // is not enough: a broker that fails every request must keep backing off).
  if (tag != kApiVersionsTag) c.backoff_ns_ = kBackoffMinNs;
  c.deadline_ = kTimeMax;
  c.receiving_ = -1;
  b.recv_ns = reactor_.now();
  bool held = false;
  if (tag == kApiVersionsTag) {
    on_api_versions(c, r);
  } else {
    held = user_.on_response(c, tag, b, r);
  }
  if (c.state_ == Connection::State::closing || c.state_ == Connection::State::backoff) {
    b.state = ResponseBuffer::State::free;  // dropped while it was being read
    return;
  }
  if (held) {
    b.state = ResponseBuffer::State::held;
    c.held_[c.held_n_++] = int(b.slot);
  } else {
    b.state = ResponseBuffer::State::free;
    b.len = 0;
  }
  // Pipelining: the next request is on the wire while a held response is used.
  request(c);
}

void Client::release_front(Connection& c) {
  ResponseBuffer& b = c.bufs_[c.held_[0]];
  b.state = ResponseBuffer::State::free;
  b.len = 0;
  c.held_[0] = c.held_[1];
  --c.held_n_;
}

void Client::on_api_versions(Connection& c, Reader& r) {
  DecodeResult d = decode_api_versions_response(r, c.api_versions_version_, c.api_versions_);
  if (!d.ok()) {
    drop(c, fmt::format("malformed ApiVersions response ({})", d.reason).c_str());
    return;
  }
  if (c.api_versions_.error == ErrorCode::unsupported_version) {
    // The broker answered in v0 shape with its own range: ask again in a version it knows.
    const int16_t v = pick_version(kApiVersionsVersions, c.api_versions_.apis);
    c.api_versions_version_ = v >= 0 ? v : 0;
    return;  // request() sends it
  }
  if (c.api_versions_.error != ErrorCode::none) {
    drop(c, to_string(c.api_versions_.error));
    return;
  }
  VersionMismatch mismatch;
  if (!negotiate_versions(c.api_versions_.apis, c.versions_, mismatch, options_.apis)) {
    char text[256];
    format_version_mismatch(mismatch, text, sizeof text);
    user_.on_incompatible(c, fmt::format("broker {}:{}: {}", c.host, c.port, text));
    return;
  }
  if (options_.list_offsets_version_max >= 0) {
    c.versions_.list_offsets = std::min(c.versions_.list_offsets, options_.list_offsets_version_max);
  }
  c.state_ = Connection::State::ready;
  log_debug("{}: broker {}:{}: Metadata v{}, ListOffsets v{}, Fetch v{}, InitProducerId v{}, Produce v{}",
            options_.log_name, c.host, c.port, c.versions_.metadata, c.versions_.list_offsets, c.versions_.fetch,
            c.versions_.init_producer_id, c.versions_.produce);
}

// ---------------------------------------------------------------------------
// Time

bool Client::poll(int64_t now) {
  using S = Connection::State;
  bool progress = false;
  for (auto& cp : conns_) {
    Connection& c = *cp;
    if (c.state_ == S::backoff && now >= c.retry_at_ && !user_.quiet() && user_.wants(c)) connect(c);
    if (c.state_ == S::resolving && c.resolver_.poll() != Resolver::State::resolving) {
      connect_resolved(c);
      progress = true;
    }
    if ((c.state_ == S::ready || c.state_ == S::negotiating || c.state_ == S::connecting ||
         c.state_ == S::resolving) &&
        now > c.deadline_) {
      drop(c, "request timed out");
    }
  }
  return progress;
}

int64_t Client::next_deadline(int64_t now) const {
  int64_t t = kTimeMax;
  using S = Connection::State;
  for (const auto& c : conns_) {
    // A back-off already over that poll() did not end is one its user does not
    // want now: no deadline (it asks again when it wants the connection), or the
    // shard would spin on a time in the past.
    if (c->state_ == S::backoff && c->retry_at_ > now) t = std::min(t, c->retry_at_);
    if (c->state_ == S::resolving) t = std::min(t, now + Resolver::kPollNs);
    // Request deadlines count only where poll() acts on them.
    const bool timed = c->state_ == S::ready || c->state_ == S::negotiating || c->state_ == S::connecting ||
                       c->state_ == S::resolving;
    if (timed && c->deadline_ != kTimeMax) t = std::min(t, c->deadline_);
  }
  return t;
}

bool Client::operations_pending() const {
  for (const auto& c : conns_) {
    if (c->ops_ > 0) return true;
  }
  return false;
}

// ---------------------------------------------------------------------------
// Bootstrap

void BootstrapBrokers::learn(const MetadataResponse& metadata) {
  known_.clear();
  for (const MetadataBroker& b : metadata.brokers) {
    if (b.port > 0 && b.port <= 65535) known_.push_back({std::string(b.host), uint16_t(b.port)});
  }
}

void BootstrapBrokers::pick(Connection& c) {
  const size_t pick = next_++ % (configured_.size() + known_.size());
  const Broker& b = pick < configured_.size() ? configured_[pick] : known_[pick - configured_.size()];
  c.host = b.host;
  c.port = b.port;
}

}  // namespace sluice::kafka
