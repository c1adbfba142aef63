#include "dataflow/metrics_server.h"

#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

#include "core/log.h"

namespace sluice {

MetricsServer::MetricsServer(EngineShared& sh, Ring& ring)
    : sh_(sh), ring_(ring), accept_done_(Completion::to<&MetricsServer::on_accept>(this)) {
  for (uint32_t i = 0; i < 2 * kConnsMax; ++i) {
    conns_.push_back(std::make_unique<Conn>());
    conns_.back()->recv_done.bind<&MetricsServer::on_recv_done>(this, i);
    conns_.back()->send_done.bind<&MetricsServer::on_send_done>(this, i);
  }
}

void MetricsServer::on_recv_done(uint32_t slot, const io_uring_cqe& cqe) { on_recv(slot, cqe.res); }
void MetricsServer::on_send_done(uint32_t slot, const io_uring_cqe& cqe) { on_send(slot, cqe.res); }

MetricsServer::~MetricsServer() {
  for (auto& c : conns_) close_conn(*c);
}

void MetricsServer::start(int64_t now_ns) {
  now_ = now_ns;
  io_uring_sqe* sqe = ring_.sqe();
  io_uring_prep_multishot_accept(sqe, sh_.resources.metrics_fd, nullptr, nullptr, SOCK_CLOEXEC);
  io_uring_sqe_set_data64(sqe, accept_done_.user_data());
}

void MetricsServer::on_accept(const io_uring_cqe& cqe) {
  if (cqe.res >= 0) admit(cqe.res);
  if (!(cqe.flags & IORING_CQE_F_MORE) && cqe.res != -EINVAL && cqe.res != -ECANCELED) {
    io_uring_sqe* sqe = ring_.sqe();
    io_uring_prep_multishot_accept(sqe, sh_.resources.metrics_fd, nullptr, nullptr, SOCK_CLOEXEC);
    io_uring_sqe_set_data64(sqe, accept_done_.user_data());
  }
}

void MetricsServer::admit(int fd) {
  size_t open = 0;
  Conn* waiting_longest = nullptr;
  for (auto& c : conns_) {
    if (c->fd < 0 || c->closing) continue;
    ++open;
    if (!c->answering && (waiting_longest == nullptr || c->deadline < waiting_longest->deadline)) {
      waiting_longest = c.get();
    }
  }
  if (open >= kConnsMax) {
    // Every slot is taken: the connection that has waited longest for its
    // request makes room (a scraper sends its request at once).
    if (waiting_longest == nullptr) {
      ::close(fd);  // all busy answering: the scraper retries
      return;
    }
    ++evicted_;
    shut(*waiting_longest);
  }
  for (uint32_t slot = 0; slot < conns_.size(); ++slot) {
    Conn& c = *conns_[slot];
    if (c.fd >= 0) continue;
    c.fd = fd;
    c.len = 0;
    c.sent = 0;
    c.answering = false;
    c.closing = false;
    c.response.clear();
    c.deadline = now_ + sh_.config.metrics.request_timeout_ns;
    io_uring_sqe* sqe = ring_.sqe();
    io_uring_prep_recv(sqe, c.fd, c.request, sizeof c.request, 0);
    io_uring_sqe_set_data64(sqe, conns_[slot]->recv_done.user_data());
    return;
  }
  ::close(fd);  // evicted connections still closing hold every slot
}

void MetricsServer::on_recv(uint32_t slot, int res) {
  Conn& c = *conns_[slot];
  if (res <= 0 || c.closing) {
    close_conn(c);
    return;
  }
  c.len += size_t(res);
  HttpRequest req;
  ParseStatus st = parse_request(std::string_view(c.request, c.len), req);
  if (st == ParseStatus::need_more && c.len < sizeof c.request) {
    io_uring_sqe* sqe = ring_.sqe();
    io_uring_prep_recv(sqe, c.fd, c.request + c.len, sizeof c.request - c.len, 0);
    io_uring_sqe_set_data64(sqe, conns_[slot]->recv_done.user_data());
    return;
  }
  std::string body;
  if (st == ParseStatus::bad_request) {
    build_response(400, "text/plain", "bad request\n", c.response);
  } else if (st != ParseStatus::complete) {
    build_response(431, "text/plain", "request head too large\n", c.response);
  } else if (req.method == HttpMethod::other) {
    build_response(405, "text/plain", "only GET and HEAD\n", c.response);
  } else {
    ResponseBody mode = req.method == HttpMethod::head ? ResponseBody::omit : ResponseBody::include;
    if (req.path == "/metrics") {
      sh_.telemetry.registry.render_prometheus(body);
      build_response(200, kPrometheusContentType, body, c.response, mode);
    } else if (req.path == "/status") {
      sh_.telemetry.registry.render_json(body);
      build_response(200, kJsonContentType, body, c.response, mode);
    } else if (req.path == "/" || req.path.empty()) {
      build_response(200, "text/plain", "sluice: /metrics (Prometheus), /status (JSON)\n", c.response,
                     mode);
    } else {
      build_response(404, "text/plain", "not found: try /metrics or /status\n", c.response, mode);
    }
  }
  // The response must be taken within request_timeout too.
  c.answering = true;
  c.deadline = now_ + sh_.config.metrics.request_timeout_ns;
  respond(c, slot);
}

void MetricsServer::on_send(uint32_t slot, int res) {
  Conn& c = *conns_[slot];
  if (res < 0 || c.closing) {
    close_conn(c);
    return;
  }
  c.sent += size_t(res);
  respond(c, slot);
}

void MetricsServer::respond(Conn& c, uint32_t slot) {
  if (c.sent >= c.response.size()) {
    close_conn(c);
    return;
  }
  io_uring_sqe* sqe = ring_.sqe();
  io_uring_prep_send(sqe, c.fd, c.response.data() + c.sent, c.response.size() - c.sent, MSG_NOSIGNAL);
  io_uring_sqe_set_data64(sqe, conns_[slot]->send_done.user_data());
}

void MetricsServer::tick(int64_t now_ns) {
  now_ = now_ns;
  for (auto& c : conns_) {
    if (c->fd >= 0 && !c->closing && now_ns >= c->deadline) shut(*c);
  }
}

int64_t MetricsServer::next_deadline() const {
  int64_t t = kTimeMax;
  for (const auto& c : conns_) {
    if (c->fd >= 0 && !c->closing) t = std::min(t, c->deadline);
  }
  return t;
}

// Ends a connection whose receive or send is pending: shutdown(2) makes it
// complete, and its completion closes the fd and frees the slot.
void MetricsServer::shut(Conn& c) {
  c.closing = true;
  ::shutdown(c.fd, SHUT_RDWR);
}

void MetricsServer::close_conn(Conn& c) {
  if (c.fd >= 0) ::close(c.fd);
  c.fd = -1;
  c.len = 0;
  c.closing = false;
  c.answering = false;
  c.response.clear();
}

}  // namespace sluice
