// A fault-injection seam in front of a real broker (the mock): a TCP proxy,
// one listener per broker, that forwards Kafka requests and responses
// unchanged except for three things:
//
//   - Metadata responses: each broker's port becomes its proxy listener's
//     port, so a client that bootstraps through the proxy stays behind it;
//   - Fetch responses: one chosen record batch of one partition gets a byte
//     flipped after its CRC field (so its CRC-32C no longer holds), the first
//     time it is served or every time;
//   - optionally, Metadata responses on every connection but the first one
//     accepted are held back for a while (a slow broker answer for one of
//     several clients, e.g. one of Sluice's shards).
//
// It understands just enough of the protocol for that: request headers (to
// know which API and version each response answers) and the non-flexible
// Metadata v1-v8 and Fetch v4-v11 response layouts. It is not a broker.
//
// Threads: one I/O thread (poll) owns every socket; the test thread only
// starts/stops it and reads its findings (under a mutex).
#pragma once

#include <gtest/gtest.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <ostream>
#include <string>
#include <thread>
#include <vector>

#include "tests/integration/harness.h"

namespace sluice::integration {

class KafkaProxy {
 public:
  enum class Corrupt { never, once, always };
  struct Options {
    std::string topic;
    int32_t partition = 0;
    // Which batch of the partition: the n-th distinct base offset served (0-based).
    int batch_ordinal = 0;
    Corrupt corrupt = Corrupt::never;
    // Metadata responses on connections after the first: held this long.
    Clock::duration metadata_delay = Clock::duration::zero();
  };
  // The batch that was corrupted, as the broker served it.
  struct Corrupted {
    int64_t base_offset = -1;
    int64_t last_offset = -1;
    int32_t records = 0;
    int times = 0;  // responses it was corrupted in
  };

  KafkaProxy();
  ~KafkaProxy();
  KafkaProxy(const KafkaProxy&) = delete;
  KafkaProxy& operator=(const KafkaProxy&) = delete;

  // Listens on 127.0.0.1:0 once per broker ("host:port", broker 1 first) and starts the I/O thread.
  ::testing::AssertionResult start(const std::vector<std::string>& brokers, Options options);
  // The listeners' "127.0.0.1:port", in broker order: give these to the client.
  const std::vector<std::string>& addresses() const { return addresses_; }
  Corrupted corrupted() const;
  // The first thing the proxy could not parse or forward, or "".
  std::string error() const;
  // Connections accepted so far.
  int connections() const;
  void stop();

 private:
  struct Conn;
  void run();
  void accept_on(size_t listener);
  bool on_client_bytes(Conn& c);
  bool on_broker_bytes(Conn& c);
  void rewrite_metadata(std::string& frame, int16_t version);
  void corrupt_fetch(std::string& frame, int16_t version);
  void fail(const std::string& what);

  Options options_;
  std::vector<int> listen_fds_;
  std::vector<std::string> addresses_;
  std::vector<uint16_t> broker_ports_;
  std::vector<uint16_t> proxy_ports_;
  std::vector<std::string> broker_hosts_;
  int wake_fds_[2] = {-1, -1};  // a pipe: writing to [1] ends the I/O thread
  std::thread thread_;
  std::vector<std::unique_ptr<Conn>> conns_;  // I/O thread only
  std::vector<int64_t> seen_bases_;           // I/O thread only: distinct base offsets, in order

  mutable std::mutex mu_;  // guards what the test thread reads
  Corrupted corrupted_;
  std::string error_;
  int accepted_ = 0;
};

// For gtest's parameter names and messages.
void PrintTo(KafkaProxy::Corrupt corrupt, std::ostream* os);

}  // namespace sluice::integration
