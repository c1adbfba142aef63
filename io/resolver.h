// Resolving a host name without blocking the shard: numeric addresses are
// converted at once; a name is looked up with getaddrinfo_a(GAI_NOWAIT) on
// glibc's own helper thread, and the owner polls it (poll() from its loop,
// with a wake-up a few milliseconds later while it is in progress). No
// callback runs on another thread, so nothing here outlives its owner but
// the request itself, which is kept on a process-wide list if a lookup is
// still running when the resolver goes away, and freed once it has ended.
//
// Owned and polled by one shard.
#pragma once

#include <netdb.h>
#include <sys/socket.h>

#include <cstdint>
#include <string>

namespace sluice {

class Resolver {
 public:
  enum class State : uint8_t { idle, resolving, done, failed };
  // How often an owner should poll() while a lookup is in progress.
  static constexpr int64_t kPollNs = 2'000'000;

  Resolver() = default;
  ~Resolver();
  Resolver(const Resolver&) = delete;
  Resolver& operator=(const Resolver&) = delete;

  // Starts resolving host:port (cancelling a lookup in progress). A numeric
  // IPv4 or IPv6 address is done at once.
  State start(const std::string& host, uint16_t port);
  // The lookup's state now.
  State poll();
  State state() const { return state_; }
  // When done: the address to connect to.
  const sockaddr_storage& address() const { return addr_; }
  socklen_t address_length() const { return addr_len_; }
  // When failed: why.
  const std::string& error() const { return error_; }

  struct Request;  // what glibc's helper thread writes into (opaque)
  // Frees the requests of abandoned lookups that have ended since and says
  // how many are still running (process-wide).
  static size_t reap_abandoned();

 private:
  void abandon();

  State state_ = State::idle;
  Request* request_ = nullptr;
  uint16_t port_ = 0;
  sockaddr_storage addr_{};
  socklen_t addr_len_ = 0;
  std::string error_;
};

}  // namespace sluice
