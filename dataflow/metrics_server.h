// The [metrics] endpoint: a small HTTP/1.1 server on shard 0's ring that
// answers GET /metrics (Prometheus text) and GET /status (JSON), one request
// per connection (every response says Connection: close).
//
// Slots: kMetricsConnsMax connections are served at once. A connection that
// has not sent its request head (or not taken its response) within
// request_timeout is closed; when every slot is taken, the connection that
// has waited longest for its request head is closed to admit the new one,
// so idle sockets cannot lock scrapers out. Rendering allocates: it is off
// the per-event path and runs only when scraped.
//
// Owned by shard 0; touched only by its thread.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "io/http.h"
#include "core/ring.h"
#include "dataflow/engine.h"

namespace sluice {

class MetricsServer {
 public:
  // Connections served at once; while evicted ones finish closing, up to
  // this many more may be open.
  static constexpr size_t kConnsMax = 8;

  MetricsServer(EngineShared& shared, Ring& ring);
  ~MetricsServer();
  MetricsServer(const MetricsServer&) = delete;
  MetricsServer& operator=(const MetricsServer&) = delete;

  // Arms the multishot accept on the listener.
  void start(int64_t now_ns);
  void on_accept(const io_uring_cqe& cqe);
  void on_recv(uint32_t slot, int res);
  void on_send(uint32_t slot, int res);
  // Closes connections past their deadline.
  void tick(int64_t now_ns);
  // The earliest deadline of an open connection, or kTimeMax.
  int64_t next_deadline() const;

 private:
  struct Conn {
    int fd = -1;
    size_t len = 0;
    std::string response;
    size_t sent = 0;
    bool answering = false;  // the request is in: sending the response
    bool closing = false;    // shut down by us: its pending operation will end
    int64_t deadline = 0;    // monotonic
    char request[kHttpRequestHeadBytesMax];
    IndexedCompletion<MetricsServer> recv_done;  // index: slot
    IndexedCompletion<MetricsServer> send_done;
  };
  void on_recv_done(uint32_t slot, const io_uring_cqe& cqe);
  void on_send_done(uint32_t slot, const io_uring_cqe& cqe);
  void admit(int fd);
  void respond(Conn& c, uint32_t slot);
  void shut(Conn& c);
  void close_conn(Conn& c);

  EngineShared& sh_;
  Ring& ring_;
  int64_t now_ = 0;
  Completion accept_done_;
  std::vector<std::unique_ptr<Conn>> conns_;  // 2 x kConnsMax slots
  uint64_t evicted_ = 0;
};

}  // namespace sluice
