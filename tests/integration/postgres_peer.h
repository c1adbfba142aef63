// A real PostgreSQL server for a test (Debian's `postgresql` package): a
// cluster made once per test binary with initdb (as the unprivileged
// `postgres` user: initdb and postgres refuse root) and copied into the
// test's directory, started on a free loopback port with its Unix socket
// there too; psql reads the tables back. Nothing of Sluice's is used to read
// what the server holds.
#pragma once

#include <cstdint>
#include <string>

#include "tests/integration/harness.h"

namespace sluice::integration {

class PostgresServer {
 public:
  explicit PostgresServer(const TempDir& dir);
  ~PostgresServer();
  PostgresServer(const PostgresServer&) = delete;
  PostgresServer& operator=(const PostgresServer&) = delete;

  // The cluster's files, in the test's directory (once; start() does it too).
  bool init();
  // Starts it and waits (bounded) until psql gets an answer; on the port it
  // had before when there was one (a restart, or reserve_port()), else a free
  // one. False and a test failure when it cannot.
  bool start();
  // A free port for a server not started yet (Sluice may be told it first).
  uint16_t reserve_port();
  // A fast shutdown (SIGINT: sessions are ended, nothing committed is lost), waited for.
  bool stop();
  uint16_t port() const { return port_; }
  // What Sluice's `dsn` says to reach it over TCP.
  std::string dsn() const;

  // psql -At (fields separated by a tab) running `sql`, as the superuser;
  // a failed statement fails the test.
  std::string query(const std::string& sql);
  CommandResult psql(const std::string& sql);
  // psql running `sql` in the background, as the superuser (a session that
  // holds a lock, say); its output goes to files in the test's directory.
  bool psql_in_background(const std::string& sql, Process& process);

 private:
  const TempDir& dir_;
  std::string base_;  // owned by the postgres user: the data directory and the socket
  uint16_t port_ = 0;
  bool initialised_ = false;
  Process process_;
};

}  // namespace sluice::integration
