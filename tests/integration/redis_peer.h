// A real redis-server for a test (Debian's package), started on a Unix
// socket and a free loopback TCP port in the test's directory, and redis-cli
// to talk to it. Nothing of Sluice's is used to read what Redis holds.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "tests/integration/harness.h"

namespace sluice::integration {

inline constexpr const char* kRedisServerBin = "/usr/bin/redis-server";
inline constexpr const char* kRedisCliBin = "/usr/bin/redis-cli";

class RedisServer {
 public:
  explicit RedisServer(const TempDir& dir);
  ~RedisServer();
  RedisServer(const RedisServer&) = delete;
  RedisServer& operator=(const RedisServer&) = delete;

  // Starts it (no persistence, `extra` arguments such as
  // {"--requirepass", "x"}) and waits (bounded) until it answers PING; on
  // the port it had before when there was one (a restart), else a free one.
  // False and a test failure when it cannot.
  bool start(const std::vector<std::string>& extra = {});
  // A free port for a server not started yet (a client may be told it first).
  uint16_t reserve_port();
  // A signal to the server (SIGSTOP / SIGCONT: a server that stops reading).
  void signal(int sig) { process_.signal(sig); }
  // SIGKILL (a crash): everything it held is gone.
  void kill() { process_.kill_and_reap(); }
  // The password redis-cli sends (AUTH) after a server with --requirepass.
  void set_cli_password(std::string password) { password_ = std::move(password); }
  const std::string& socket_path() const { return socket_; }
  uint16_t port() const { return port_; }

  // redis-cli ARGS against this server (over the socket), stdin from `input`
  // when given (commands one per line, or the raw last argument with -x).
  CommandResult cli(const std::vector<std::string>& args, std::optional<std::string_view> input = std::nullopt);
  // One command's reply as redis-cli prints it without a terminal (raw).
  std::string reply(const std::vector<std::string>& args);

 private:
  const TempDir& dir_;
  std::string socket_;
  uint16_t port_ = 0;
  std::string password_;
  Process process_;
};

// An argument for redis-cli's command lines: double-quoted, every byte as \xHH.
std::string redis_cli_quote(std::string_view bytes);

}  // namespace sluice::integration
