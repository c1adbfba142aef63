#include "tests/integration/redis_peer.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <thread>

namespace sluice::integration {

namespace {

// A loopback port the kernel just handed out (and took back): free unless
// another process grabs it in between, which start() then retries.
uint16_t free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  uint16_t port = 0;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0) {
    port = ntohs(a.sin_port);
  }
  ::close(fd);
  return port;
}

}  // namespace

RedisServer::RedisServer(const TempDir& dir) : dir_(dir), socket_(dir.file("redis.sock")) {}

RedisServer::~RedisServer() { process_.kill_and_reap(); }

uint16_t RedisServer::reserve_port() {
  if (port_ == 0) port_ = free_port();
  return port_;
}

bool RedisServer::start(const std::vector<std::string>& extra) {
  if (::access(kRedisServerBin, X_OK) != 0) {
    ADD_FAILURE() << kRedisServerBin << " is missing: scripts/install-deps.sh installs redis-server";
    return false;
  }
  const bool keep_port = port_ != 0;
  for (int attempt = 0; attempt < 3; ++attempt) {
    if (!keep_port) port_ = free_port();
    std::vector<std::string> argv = {kRedisServerBin, "--port", std::to_string(port_), "--bind", "127.0.0.1",
                                     "--unixsocket", socket_, "--save", "", "--appendonly", "no",
                                     "--dir", dir_.path()};
    argv.insert(argv.end(), extra.begin(), extra.end());
    if (!process_.start(argv, dir_.file("redis.stdout"), dir_.file("redis.stderr"))) return false;
    const Clock::time_point deadline = Clock::now() + kStartTimeout;
    while (Clock::now() < deadline && process_.running()) {
      if (::access(socket_.c_str(), F_OK) == 0 && reply({"PING"}) == "PONG\n") return true;
      std::this_thread::sleep_for(kPollInterval);
    }
    process_.kill_and_reap();  // the port was taken, or it never answered
  }
  ADD_FAILURE() << "redis-server did not start: " << read_file(dir_.file("redis.stdout"));
  return false;
}

CommandResult RedisServer::cli(const std::vector<std::string>& args, std::optional<std::string_view> input) {
  std::vector<std::string> argv = {kRedisCliBin, "-s", socket_};
  if (!password_.empty()) {
    argv.push_back("--no-auth-warning");
    argv.push_back("-a");
    argv.push_back(password_);
  }
  argv.insert(argv.end(), args.begin(), args.end());
  return run_command(argv, dir_, kExitTimeout, input);
}

std::string RedisServer::reply(const std::vector<std::string>& args) { return cli(args).out; }

std::string redis_cli_quote(std::string_view bytes) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out = "\"";
  for (unsigned char c : bytes) {
    out += "\\x";
    out += kHex[c >> 4];
    out += kHex[c & 15];
  }
  out += '"';
  return out;
}

}  // namespace sluice::integration
