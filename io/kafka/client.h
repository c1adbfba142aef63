// The Kafka client's connection layer, on a shard's reactor: broker
// connections, each resolving its host without blocking the shard
// (io/resolver.h), connecting, negotiating API versions (ApiVersions), then
// carrying one request at a time whose response lands in one of two buffers,
// so the next request can be on the wire while the last response is still
// being used; request deadlines; reconnection with capped back-off.
//
// What requests to send, and what a response means, is its user's business
// (ClientUser): the consumer (io/sources/kafka_source.cc: Metadata,
// ListOffsets, Fetch) and the producer (io/sinks/kafka_sink.cc: Metadata,
// InitProducerId, Produce). The client knows no topic
// or partition.
//
// Owned by one shard; touched only by its thread.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "core/clock.h"
#include "core/reactor.h"
#include "io/kafka/protocol.h"
#include "io/resolver.h"

namespace sluice::kafka {

class Client;

// One response's bytes, size prefix included, with kLinePadding readable
// bytes after its capacity (record values are parsed in place).
struct ResponseBuffer {
  enum class State : uint8_t { free, receiving, held };
  std::unique_ptr<uint8_t[]> data;
  size_t cap = 0;  // bytes a response may take, size prefix included (padding is extra)
  size_t len = 0;
  State state = State::free;
  uint32_t slot = 0;    // 0 or 1: which of its connection's buffers
  int64_t recv_ns = 0;  // monotonic: when the response was complete
};

// One broker connection.
class Connection {
 public:
  enum class State : uint8_t { closed, resolving, connecting, negotiating, ready, closing, backoff };

  uint32_t index() const { return index_; }  // in its client, in the order added
  int32_t node_id = -1;                      // the broker's id, -1 for a bootstrap connection
  std::string host;
  uint16_t port = 0;

  State state() const { return state_; }
  // Negotiated: requests of the user may be sent.
  bool ready() const { return state_ == State::ready; }
  // A request is in flight.
  bool busy() const { return tag_ != 0; }
  const NegotiatedVersions& versions() const { return versions_; }
  // Monotonic time a reconnection falls due (backoff).
  int64_t retry_at() const { return retry_at_; }
  // Responses the user holds, oldest first (ClientUser::on_response returned true).
  size_t held() const { return held_n_; }
  ResponseBuffer& held_front() { return bufs_[held_[0]]; }

 private:
  friend class Client;
  uint32_t index_ = 0;
  State state_ = State::closed;
  int fd_ = -1;
  int ops_ = 0;  // io_uring operations in flight on fd_
  int64_t retry_at_ = 0;
  int64_t backoff_ns_ = 0;
  int64_t deadline_ = kTimeMax;  // the request in flight must be answered by then
  NegotiatedVersions versions_;
  int16_t api_versions_version_ = kApiVersionsVersions.max;
  ApiVersionsResponse api_versions_;
  uint32_t tag_ = 0;  // the user's tag of the request in flight; 0: none
  int32_t correlation_ = 0;
  std::vector<uint8_t> out_;
  size_t sent_ = 0;
  ResponseBuffer bufs_[2];
  int receiving_ = -1;   // buffer the response in flight goes into
  int held_[2] = {-1, -1};
  int held_n_ = 0;
  Resolver resolver_;
  IndexedCompletion<Client> connect_done_, send_done_, recv_done_;
};

// What the client asks and tells its user.
class ClientUser {
 public:
  virtual ~ClientUser() = default;
  // c is free for a request: encode the one due (if any) into w with this
  // correlation id and return a tag for it (> 0), with how long the broker
  // may hold it (a Fetch's max_wait) in wait_ns; 0 when nothing is due.
  virtual uint32_t next_request(Connection& c, Writer& w, int32_t correlation, int64_t& wait_ns) = 0;
  // The response to the request tagged `tag`, in b (r reads its body). True:
  // the user holds b (Client::release it later, in order); false: done with it.
  virtual bool on_response(Connection& c, uint32_t tag, ResponseBuffer& b, Reader& r) = 0;
  // c is being dropped: re-plan what it carried. (Held responses go with it.)
  virtual void on_drop(Connection& c) = 0;
  // The broker and the client share no version of an API the client needs.
  virtual void on_incompatible(Connection& c, const std::string& why) = 0;
  // c is backing off: should it reconnect now?
  virtual bool wants(const Connection& c) = 0;
  // Stopping or failed: no more requests, no warnings about drops.
  virtual bool quiet() const = 0;
};

// Where a bootstrap connection goes: the configured brokers in turn, then any
// broker the last Metadata named (kept as owned strings: a decoded response's
// are views into a buffer the next response overwrites).
class BootstrapBrokers {
 public:
  struct Broker {
    std::string host;
    uint16_t port = 0;
  };
  // From the configured list: anything with a host and a port each.
  template <class Brokers>
  explicit BootstrapBrokers(const Brokers& configured) {
    for (const auto& b : configured) configured_.push_back({b.host, b.port});
  }
  // Remembers the brokers of a Metadata response.
  void learn(const MetadataResponse& metadata);
  // Points c at the next candidate.
  void pick(Connection& c);

 private:
  std::vector<Broker> configured_;
  std::vector<Broker> known_;
  size_t next_ = 0;
};

struct ClientOptions {
  std::string log_name;          // "source sales", for log lines
  std::string client_id = "sluice";
  size_t response_bytes_max = 0;  // the largest response (a Fetch's max_bytes plus slack)
  int16_t list_offsets_version_max = -1;  // cap on the negotiated version, -1 = none
  // The APIs every broker must offer (a consumer's or a producer's).
  std::span<const ApiVersionRange> apis = kConsumerVersions;
};

class Client {
 public:
  Client(Reactor& reactor, ClientUser& user, ClientOptions options);
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // A new connection (closed), kept for the client's life.
  Connection& add(int32_t node_id);
  Connection* find(int32_t node_id);
  const Connection* find(int32_t node_id) const { return const_cast<Client*>(this)->find(node_id); }
  Connection& at(uint32_t index) { return *conns_[index]; }
  const Connection& at(uint32_t index) const { return *conns_[index]; }
  size_t size() const { return conns_.size(); }

  // (Re)connects c to c.host:c.port.
  void connect(Connection& c);
  // Gives up on c (logged unless the user is quiet); it reconnects after a
  // back-off when the user wants it then.
  void drop(Connection& c, const char* why);
  // Closes every connection for good (stop).
  void close_all();
  // Asks the user for c's next request and sends it, if c is free.
  void request(Connection& c);
  // The user is done with c's oldest held response.
  void release_front(Connection& c);
  // Reconnections due, lookups finished, deadlines passed. True on progress.
  bool poll(int64_t now);
  // The earliest time poll() has something to do, or kTimeMax.
  int64_t next_deadline(int64_t now) const;
  // io_uring operations still in flight (buffers in the kernel's hands).
  bool operations_pending() const;

 private:
  void connect_resolved(Connection& c);
  void finish_close(Connection& c);
  void send(Connection& c);
  void arm_recv(Connection& c);
  void on_connect_done(uint32_t index, const io_uring_cqe& cqe);
  void on_send_done(uint32_t index, const io_uring_cqe& cqe);
  void on_recv_done(uint32_t index, const io_uring_cqe& cqe);
  // An operation of c ended; false when c was closing (and is handled).
  bool op_done(Connection& c);
  void on_response(Connection& c, ResponseBuffer& b);
  void on_api_versions(Connection& c, Reader& r);

  Reactor& reactor_;
  ClientUser& user_;
  ClientOptions options_;
  int32_t correlation_ = 0;
  std::vector<std::unique_ptr<Connection>> conns_;
};

}  // namespace sluice::kafka
