#include "tests/integration/postgres_peer.h"

#include <netinet/in.h>
#include <pwd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <thread>
#include <vector>

namespace sluice::integration {

namespace {

constexpr const char* kSetpriv = "/usr/bin/setpriv";

// The newest installed server's binaries (Debian: /usr/lib/postgresql/<major>/bin).
std::string postgres_bin_dir() {
  std::string best;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator("/usr/lib/postgresql", ec)) {
    const std::string bin = e.path().string() + "/bin";
    if (::access((bin + "/postgres").c_str(), X_OK) == 0 && bin > best) best = bin;
  }
  return best;
}

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

std::vector<std::string> as_postgres(std::vector<std::string> argv) {
  std::vector<std::string> out = {kSetpriv, "--reuid=postgres", "--regid=postgres", "--init-groups",
                                  "--"};
  out.insert(out.end(), argv.begin(), argv.end());
  return out;
}

bool chown_to_postgres(const std::string& path) {
  const passwd* pw = ::getpwnam("postgres");
  if (pw == nullptr) {
    ADD_FAILURE() << "no user \"postgres\": scripts/install-deps.sh installs the postgresql "
                     "package, which makes it";
    return false;
  }
  std::error_code ec;
  for (const auto& e : std::filesystem::recursive_directory_iterator(path, ec)) {
    if (::lchown(e.path().c_str(), pw->pw_uid, pw->pw_gid) != 0) return false;
  }
  return ::chown(path.c_str(), pw->pw_uid, pw->pw_gid) == 0;
}

// One initdb per test binary, copied by every server: initdb takes seconds.
// Removed when the binary exits.
struct Template {
  std::string dir;
  ~Template() {
    std::error_code ec;
    if (!dir.empty()) std::filesystem::remove_all(dir, ec);
  }
};

const std::string& template_cluster(const TempDir& scratch) {
  static Template t;
  if (!t.dir.empty()) return t.dir;
  char name[] = "/tmp/sluice-pg-template-XXXXXX";
  if (::mkdtemp(name) == nullptr) {
    ADD_FAILURE() << "mkdtemp";
    return t.dir;
  }
  ::chmod(name, 0755);
  if (!chown_to_postgres(name)) {
    ADD_FAILURE() << "cannot give " << name << " to the postgres user";
    return t.dir;
  }
  const std::string data = std::string(name) + "/data";
  const CommandResult r =
      run_command(as_postgres({postgres_bin_dir() + "/initdb", "-D", data, "-A", "trust", "-U",
                               "postgres", "-E", "UTF8", "--locale=C", "--no-sync"}),
                  scratch);
  if (!r.status.exited || r.status.code != 0) {
    ADD_FAILURE() << "initdb failed: " << r.out << r.err;
    std::error_code ec;
    std::filesystem::remove_all(name, ec);
    return t.dir;
  }
  t.dir = name;
  return t.dir;
}

}  // namespace

PostgresServer::PostgresServer(const TempDir& dir) : dir_(dir), base_(dir.file("pg")) {}

PostgresServer::~PostgresServer() {
  // Immediate shutdown: the postmaster ends its backends and exits at once.
  process_.signal(SIGQUIT);
  if (!process_.wait_exit(10s)) process_.kill_and_reap();
}

uint16_t PostgresServer::reserve_port() {
  if (port_ == 0) port_ = free_port();
  return port_;
}

std::string PostgresServer::dsn() const {
  return fmt::format("host=127.0.0.1 port={} dbname=postgres user=postgres", port_);
}

bool PostgresServer::init() {
  if (initialised_) return true;
  if (postgres_bin_dir().empty() || ::access(kSetpriv, X_OK) != 0) {
    ADD_FAILURE() << "no PostgreSQL server or setpriv: scripts/install-deps.sh installs postgresql";
    return false;
  }
  const std::string& tmpl = template_cluster(dir_);
  if (tmpl.empty()) return false;
  // The postgres user must reach the cluster through the test's directory.
  ::chmod(dir_.path().c_str(), 0711);
  std::error_code ec;
  std::filesystem::create_directories(base_, ec);
  std::filesystem::copy(
      tmpl + "/data", base_ + "/data",
      std::filesystem::copy_options::recursive | std::filesystem::copy_options::copy_symlinks, ec);
  if (ec) {
    ADD_FAILURE() << "copying the cluster: " << ec.message();
    return false;
  }
  ::chmod((base_ + "/data").c_str(), 0700);
  if (!chown_to_postgres(base_)) {
    ADD_FAILURE() << "cannot give " << base_ << " to the postgres user";
    return false;
  }
  initialised_ = true;
  return true;
}

bool PostgresServer::start() {
  if (!init()) return false;
  const bool keep_port = port_ != 0;
  for (int attempt = 0; attempt < 3; ++attempt) {
    if (!keep_port) port_ = free_port();
    const std::vector<std::string> argv =
        as_postgres({postgres_bin_dir() + "/postgres", "-D", base_ + "/data", "-p",
                     std::to_string(port_), "-k", base_, "-c", "listen_addresses=127.0.0.1", "-c",
                     "fsync=off", "-c", "full_page_writes=off", "-c", "max_connections=20", "-c",
                     "shared_buffers=16MB", "-c", "log_min_messages=warning"});
    if (!process_.start(argv, dir_.file("postgres.stdout"), dir_.file("postgres.stderr")))
      return false;
    const Clock::time_point deadline = Clock::now() + kStartTimeout;
    while (Clock::now() < deadline && process_.running()) {
      if (psql("SELECT 1").out == "1\n") return true;
      std::this_thread::sleep_for(50ms);
    }
    process_.signal(SIGQUIT);
    if (!process_.wait_exit(10s)) process_.kill_and_reap();
  }
  ADD_FAILURE() << "postgres did not start: " << read_file(dir_.file("postgres.stderr"));
  return false;
}

bool PostgresServer::stop() {
  process_.signal(SIGINT);
  const auto st = process_.wait_exit(kExitTimeout);
  if (!st) {
    ADD_FAILURE() << "postgres did not stop";
    process_.kill_and_reap();
    return false;
  }
  return true;
}

CommandResult PostgresServer::psql(const std::string& sql) {
  return run_command(
      {postgres_bin_dir() + "/psql", "-X", "-q", "-h", base_, "-p", std::to_string(port_), "-U",
       "postgres", "-d", "postgres", "-v", "ON_ERROR_STOP=1", "-At", "-F", "\t", "-c", sql},
      dir_);
}

bool PostgresServer::psql_in_background(const std::string& sql, Process& process) {
  return process.start({postgres_bin_dir() + "/psql", "-X", "-q", "-h", base_, "-p", std::to_string(port_), "-U",
                        "postgres", "-d", "postgres", "-v", "ON_ERROR_STOP=1", "-At", "-c", sql},
                       dir_.file("psql-background.out"), dir_.file("psql-background.err"));
}

std::string PostgresServer::query(const std::string& sql) {
  const CommandResult r = psql(sql);
  EXPECT_TRUE(r.status.exited && r.status.code == 0) << sql << "\n" << r.err;
  return r.out;
}


}  // namespace sluice::integration
