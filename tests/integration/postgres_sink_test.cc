// The PostgreSQL sink against a real PostgreSQL server: the table Sluice
// creates (column types, primary key) and every row in it, read back with
// psql and compared with values computed here from the events; upsert and
// replace re-runs that do not double; a server restarted mid-run and one
// that comes up only after the run has started (waited for without
// spinning), with nothing lost; errors that will not heal stop the run with
// exit 1 naming the table; config errors with file:line:column.
#include <gtest/gtest.h>

#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <random>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "tests/integration/harness.h"
#include "tests/integration/postgres_peer.h"

namespace sluice::integration {
namespace {

constexpr int64_t kWindowS = 60;
constexpr int64_t kT0 = 1'699'999'980;  // a whole minute

// The stores of the events: plain, UTF-8, and one that COPY must escape
// (a backslash and a tab), as JSON and as the text PostgreSQL must hold.
struct Store {
  const char* json;
  const char* text;
};
constexpr Store kStores[] = {{"north", "north"},
                             {"s\xc3\xbc"
                              "d",
                              "s\xc3\xbc"
                              "d"},
                             {"we\\\\st\\tx", "we\\st\tx"}};

struct Row {
  int64_t quantity = 0;
  double revenue = 0;
  int64_t events = 0;
};
// (window start in epoch seconds, product, store text) -> row
using Rows = std::map<std::tuple<int64_t, std::string, std::string>, Row>;

std::string make_event(std::mt19937_64& rng, int product, int64_t t, Rows& rows) {
  const Store& store = kStores[size_t(product) % 3];
  const int64_t quantity = int64_t(rng() % 9) + 1;
  const double revenue = double(rng() % 4000) * 0.25;  // exact in binary: sums are exact
  Row& r = rows[{t - t % kWindowS, std::to_string(product), store.text}];
  r.quantity += quantity;
  r.revenue += revenue;
  r.events += 1;
  return fmt::format(R"({{"product_id":{},"store":"{}","quantity":{},"revenue":{},"ts":{}}})",
                     product, store.json, quantity, revenue, t) +
         "\n";
}

std::string make_events(std::mt19937_64& rng, int events, int minutes, int products, Rows& rows,
                        int64_t t0 = kT0) {
  std::string out;
  for (int i = 0; i < events; ++i) {
    out += make_event(rng, int(rng() % uint64_t(products)),
                      t0 + int64_t(i) * minutes * kWindowS / events, rows);
  }
  return out;
}

std::string config(const TempDir& dir, const std::string& source, const std::string& sink) {
  return fmt::format(R"(
[pipeline]
shards = 2
[[sources]]
name = "in"
{}
[schema]
key = ["product_id", "store"]
time = {{ field = "ts", format = "epoch_s" }}
fields = {{ quantity = "int64", revenue = "float64" }}
[window]
size = "1m"
[[aggregates]]
name = "total_quantity"
fn = "sum"
field = "quantity"
[[aggregates]]
name = "total_revenue"
fn = "sum"
field = "revenue"
[[aggregates]]
name = "events"
fn = "count"
[[aggregates]]
name = "mean_revenue"
fn = "avg"
field = "revenue"
[[sinks]]
name = "warehouse"
type = "postgres"
buffer_bytes = 65536
{}
)",
                     source, sink);
  (void)dir;
}

std::string file_source(const TempDir& dir) {
  return file_source_keys(dir.file("events.ndjson"));
}

std::string sink_keys(const PostgresServer& pg, const std::string& table,
                      const std::string& extra) {
  return fmt::format("dsn = {}\ntable = {}\n{}", toml_string(pg.dsn()), toml_string(table), extra);
}

std::string unhex(const std::string& hex) {
  std::string out;
  for (size_t i = 0; i + 1 < hex.size(); i += 2)
    out += char(std::stoi(hex.substr(i, 2), nullptr, 16));
  return out;
}

// The table's rows (those whose constant column `date` holds `date_value`,
// when given) equal `expected`: no row missing, none extra, none twice.
void expect_table(PostgresServer& pg, const std::string& table, const Rows& expected,
                  const std::string& where = "TRUE") {
  const std::string out =
      pg.query(fmt::format("SELECT extract(epoch FROM window_start)::bigint, extract(epoch FROM "
                           "window_end)::bigint, product_id, "
                           "encode(convert_to(store, 'UTF8'), 'hex'), total_quantity, "
                           "total_revenue, events, mean_revenue FROM {} "
                           "WHERE {}",
                           table, where));
  Rows got;
  size_t lines = 0;
  for (const std::string& line : complete_lines(out)) {
    ++lines;
    std::vector<std::string> f;
    size_t at = 0;
    for (;;) {
      const size_t tab = line.find('\t', at);
      f.push_back(line.substr(at, tab == std::string::npos ? std::string::npos : tab - at));
      if (tab == std::string::npos) break;
      at = tab + 1;
    }
    ASSERT_EQ(f.size(), 8u) << line;
    const int64_t start = std::stoll(f[0]);
    EXPECT_EQ(std::stoll(f[1]), start + kWindowS) << line;
    Row& r = got[{start, f[2], unhex(f[3])}];
    EXPECT_EQ(r.events, 0) << "twice: " << line;
    r.quantity = std::stoll(f[4]);
    r.revenue = std::stod(f[5]);
    r.events = std::stoll(f[6]);
    EXPECT_EQ(std::stod(f[7]), r.revenue / double(r.events)) << line;
  }
  EXPECT_EQ(lines, expected.size());
  for (const auto& [k, e] : expected) {
    const auto it = got.find(k);
    if (it == got.end()) {
      ADD_FAILURE() << "missing: window " << std::get<0>(k) << " product " << std::get<1>(k)
                    << " store " << std::get<2>(k);
      continue;
    }
    EXPECT_EQ(it->second.quantity, e.quantity) << std::get<1>(k);
    EXPECT_EQ(it->second.revenue, e.revenue) << std::get<1>(k);
    EXPECT_EQ(it->second.events, e.events) << std::get<1>(k);
  }
  EXPECT_EQ(got.size(), expected.size());
}

TEST(PostgresSink, AppendCreatesTheTableWithTypedColumnsAndWritesEveryRowExactly) {
  TempDir dir;
  PostgresServer pg(dir);
  ASSERT_TRUE(pg.start());
  std::mt19937_64 rng(1);
  Rows expected;
  write_file(dir.file("events.ndjson"), make_events(rng, 20000, 7, 200, expected));
  write_file(dir.file("p.toml"),
             config(dir, file_source(dir),
                    sink_keys(pg, "daily_sales",
                              "create = true\ncolumns = { business_date = \"2024-03-27\" }")));
  SluiceRun run(dir, dir.file("p.toml"));
  ASSERT_TRUE(run.start());
  ASSERT_TRUE(run.exits_cleanly()) << run.stderr_text();
  EXPECT_TRUE(warnings_and_errors(run.stderr_text()).empty()) << run.stderr_text();
  EXPECT_EQ(
      pg.query("SELECT column_name, data_type, is_nullable FROM information_schema.columns WHERE "
               "table_name = 'daily_sales' ORDER BY ordinal_position"),
      "window_start\ttimestamp with time zone\tNO\n"
      "window_end\ttimestamp with time zone\tNO\n"
      "product_id\ttext\tNO\n"
      "store\ttext\tNO\n"
      "total_quantity\tbigint\tYES\n"
      "total_revenue\tdouble precision\tYES\n"
      "events\tbigint\tYES\n"
      "mean_revenue\tdouble precision\tYES\n"
      "business_date\ttext\tNO\n");
  EXPECT_EQ(
      pg.query(
          "SELECT string_agg(a.attname, ',' ORDER BY array_position(i.indkey::int2[], a.attnum)) "
          "FROM "
          "pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey) "
          "WHERE i.indrelid = 'daily_sales'::regclass AND i.indisprimary"),
      "business_date,window_start,product_id,store\n");
  expect_table(pg, "daily_sales", expected);
  EXPECT_EQ(pg.query("SELECT DISTINCT business_date FROM daily_sales"), "2024-03-27\n");
  // A table that exists (made by the first run) is appended to: the same rows
  // again violate its primary key, which stops the run (exit 1) rather than
  // doubling anything.
  SluiceRun again(dir, dir.file("p.toml"));
  ASSERT_TRUE(again.start());
  const auto st = again.process().wait_exit(kExitTimeout);
  ASSERT_TRUE(st.has_value());
  EXPECT_TRUE(st->exited && st->code == 1) << st->describe() << again.stderr_text();
  EXPECT_NE(
      again.stderr_text().find("\"daily_sales\": duplicate key value violates unique constraint"),
      std::string::npos)
      << again.stderr_text();
  expect_table(pg, "daily_sales", expected);
}

TEST(PostgresSink, UpsertRerunsUpdateInsteadOfDoubling) {
  TempDir dir;
  PostgresServer pg(dir);
  ASSERT_TRUE(pg.start());
  std::mt19937_64 rng(2);
  Rows expected;
  const std::string first = make_events(rng, 8000, 4, 80, expected);
  write_file(dir.file("events.ndjson"), first);
  write_file(
      dir.file("p.toml"),
      config(dir, file_source(dir), sink_keys(pg, "sales", "create = true\nmode = \"upsert\"")));
  for (int i = 0; i < 2; ++i) {
    SluiceRun run(dir, dir.file("p.toml"));
    ASSERT_TRUE(run.start());
    ASSERT_TRUE(run.exits_cleanly()) << run.stderr_text();
    expect_table(pg, "sales", expected);
  }
  // Other events for the same windows, with more keys: the rows of the keys
  // they have take their totals, new keys are added, the others stay.
  Rows second;
  write_file(dir.file("events.ndjson"), make_events(rng, 4000, 4, 120, second));
  for (const auto& [k, row] : second) expected[k] = row;
  SluiceRun run(dir, dir.file("p.toml"));
  ASSERT_TRUE(run.start());
  ASSERT_TRUE(run.exits_cleanly()) << run.stderr_text();
  expect_table(pg, "sales", expected);
}

TEST(PostgresSink, ReplaceRerunsReplaceTheirOwnConstantColumnsRowsOnly) {
  TempDir dir;
  PostgresServer pg(dir);
  ASSERT_TRUE(pg.start());
  std::mt19937_64 rng(3);
  Rows day1, day1_again;
  const std::string events1 = make_events(rng, 6000, 3, 60, day1);
  const std::string events1_again =
      make_events(rng, 2000, 2, 20, day1_again);  // fewer keys: old rows must go
  auto run_day = [&](const std::string& events, const std::string& day) {
    write_file(dir.file("events.ndjson"), events);
    write_file(
        dir.file("p.toml"),
        config(
            dir, file_source(dir),
            sink_keys(pg, "public.nightly",
                      fmt::format("create = true\nmode = \"replace\"\ncolumns = {{ day = \"{}\" }}",
                                  day))));
    SluiceRun run(dir, dir.file("p.toml"));
    ASSERT_TRUE(run.start());
    ASSERT_TRUE(run.exits_cleanly()) << run.stderr_text();
  };
  run_day(events1, "2024-03-27");
  run_day(events1, "2024-03-27");
  expect_table(pg, "nightly", day1);
  run_day(events1_again, "2024-03-27");
  expect_table(pg, "nightly", day1_again);
  run_day(events1, "2024-03-28");
  expect_table(pg, "nightly", day1_again, "day = '2024-03-27'");
  expect_table(pg, "nightly", day1, "day = '2024-03-28'");
}

// Over TCP: rows of the first minutes are in the table; the server is shut
// down (fast: every session ended) while more events arrive, and started
// again a second later: the sink reconnects and every row is there once.
TEST(PostgresSink, AServerRestartedMidRunLosesNothing) {
  TempDir dir;
  PostgresServer pg(dir);
  ASSERT_TRUE(pg.start());
  std::mt19937_64 rng(4);
  Rows expected;
  std::string phase_a = make_events(rng, 4000, 2, 300, expected);
  const size_t rows_after_a = expected.size();
  phase_a += make_event(rng, 0, kT0 + 2 * kWindowS + 30, expected);  // minutes 0 and 1 fire
  const std::string phase_b = make_events(rng, 30000, 6, 300, expected, kT0 + 2 * kWindowS + 30);
  write_file(dir.file("p.toml"),
             config(dir, tcp_source_keys(),
                    sink_keys(pg, "sales", "create = true\nflush_interval = \"10ms\"")));
  SluiceRun run(dir, dir.file("p.toml"));
  ASSERT_TRUE(run.start());
  const auto port = run.wait_for_port("in");
  ASSERT_TRUE(port.has_value());
  TcpClient client;
  ASSERT_EQ(client.connect(*port), "");
  ASSERT_EQ(client.send_all(phase_a), "");
  const Clock::time_point deadline = Clock::now() + kRowsTimeout;
  auto count = [&] {
    const CommandResult r = pg.psql("SELECT count(*) FROM sales");
    return r.status.code == 0 && !r.out.empty() ? std::stoull(r.out) : 0;
  };
  while (count() < rows_after_a && Clock::now() < deadline)
    std::this_thread::sleep_for(kPollInterval);
  ASSERT_EQ(count(), rows_after_a) << run.stderr_text();
  // Phase B flows (a flush every 10 ms) while the server shuts down.
  std::string send_error = "not done";
  std::thread sender([&] {
    std::mt19937_64 chunks(5);
    send_error = client.send_chunked(phase_b, chunks);
  });
  std::this_thread::sleep_for(100ms);
  EXPECT_TRUE(pg.stop());  // (no ASSERT while the sender runs)
  std::this_thread::sleep_for(1s);
  EXPECT_TRUE(run.process().running());
  EXPECT_TRUE(pg.start());
  sender.join();
  EXPECT_EQ(send_error, "");
  EXPECT_EQ(client.finish(), "");
  ASSERT_TRUE(run.terminates_cleanly()) << run.stderr_text();
  expect_table(pg, "sales", expected);
  const std::string log = run.stderr_text();
  EXPECT_NE(log.find("reconnected to PostgreSQL"), std::string::npos) << log;
}

// The server is not up when the run starts, and rows are due: the sink waits
// with back-off, costing next to no CPU, and once the server is up every row
// lands.
TEST(PostgresSink, AServerDownAtStartIsWaitedForWithoutSpinning) {
  TempDir dir;
  PostgresServer pg(dir);
  ASSERT_TRUE(pg.init());
  pg.reserve_port();
  std::mt19937_64 rng(6);
  Rows expected;
  write_file(dir.file("events.ndjson"), make_events(rng, 5000, 3, 50, expected));
  write_file(dir.file("p.toml"),
             config(dir, file_source(dir),
                    sink_keys(pg, "sales", "create = true\n[metrics]\nlisten = \"127.0.0.1:0\"")));
  SluiceRun run(dir, dir.file("p.toml"));
  ASSERT_TRUE(run.start());
  const Clock::time_point deadline = Clock::now() + kRowsTimeout;
  while (run.stderr_text().find("reconnecting in") == std::string::npos &&
         Clock::now() < deadline) {
    std::this_thread::sleep_for(kPollInterval);
  }
  ASSERT_NE(run.stderr_text().find("Connection refused"), std::string::npos) << run.stderr_text();
  std::this_thread::sleep_for(500ms);
  const double before = process_cpu_seconds(run.process().pid());
  std::this_thread::sleep_for(2s);
  const double used = process_cpu_seconds(run.process().pid()) - before;
  // A spinning shard uses ~2 s here; waiting costs a few reconnection attempts.
  EXPECT_LT(used, 0.5) << "CPU seconds in 2 s while the server was away";
  RecordProperty("cpu_seconds_in_2s_while_away", std::to_string(used));
  ASSERT_TRUE(run.process().running()) << run.stderr_text();
  ASSERT_TRUE(pg.start());
  ASSERT_TRUE(run.exits_cleanly()) << run.stderr_text();
  expect_table(pg, "sales", expected);
}

// A flush held up on the server past `timeout` after all its rows were sent
// (one row waits for another session's uncommitted row with the same key)
// commits once that session rolls back, though the sink has given up on the
// connection by then. The sink must not send it again meanwhile: the next
// connection asks whether the flush's transaction committed, waits while it is
// in progress, and sends the rows again only if it did not. (Sent again, they
// would meet the committed ones' primary key and stop the run.)
TEST(PostgresSink, AFlushThatTimesOutOnTheServerIsNotWrittenTwice) {
  TempDir dir;
  PostgresServer pg(dir);
  ASSERT_TRUE(pg.start());
  std::mt19937_64 rng(12);
  Rows expected;
  write_file(dir.file("events.ndjson"), make_events(rng, 800, 1, 10, expected));
  pg.query(
      "CREATE TABLE held (window_start timestamptz NOT NULL, window_end timestamptz NOT NULL, product_id text "
      "NOT NULL, store text NOT NULL, total_quantity bigint, total_revenue float8, events bigint, mean_revenue "
      "float8, PRIMARY KEY (window_start, product_id, store))");
  const auto& [key, row] = *std::find_if(expected.begin(), expected.end(),
                                         [](const auto& e) { return std::get<2>(e.first) == "north"; });
  Process other;
  ASSERT_TRUE(pg.psql_in_background(
      fmt::format("BEGIN; INSERT INTO held VALUES (to_timestamp({}), to_timestamp({}), '{}', 'north', 0, 0, 0, 0); "
                  "SELECT pg_sleep(4); ROLLBACK;",
                  std::get<0>(key), std::get<0>(key) + kWindowS, std::get<1>(key)),
      other));
  const Clock::time_point inserted = Clock::now() + 10s;
  while (pg.query("SELECT count(*) FROM pg_stat_activity WHERE wait_event = 'PgSleep'") != "1\n") {
    ASSERT_LT(Clock::now(), inserted) << "the other session did not start";
    std::this_thread::sleep_for(kPollInterval);
  }
  write_file(dir.file("p.toml"), config(dir, file_source(dir), sink_keys(pg, "held", "timeout = \"1s\"")));
  SluiceRun run(dir, dir.file("p.toml"));
  ASSERT_TRUE(run.start());
  ASSERT_TRUE(run.exits_cleanly()) << run.stderr_text();
  const std::string err = run.stderr_text();
  EXPECT_NE(err.find("no answer within 1000 ms (writing"), std::string::npos) << err;  // it did time out
  EXPECT_NE(err.find("committed: not sent again"), std::string::npos) << err;
  const std::optional<ExitStatus> done = other.wait_exit(10s);
  ASSERT_TRUE(done.has_value() && done->exited && done->code == 0);
  expect_table(pg, "held", expected);
}

// Errors that waiting will not mend stop the run with exit 1, naming the
// table, and the row where the server names one.
TEST(PostgresSink, ErrorsThatWillNotHealStopTheRunNamingTheTable) {
  TempDir dir;
  PostgresServer pg(dir);
  ASSERT_TRUE(pg.start());
  std::mt19937_64 rng(7);
  Rows expected;
  write_file(dir.file("events.ndjson"), make_events(rng, 600, 2, 10, expected));
  pg.query(
      "CREATE TABLE typed (window_start timestamptz, window_end timestamptz, product_id bigint, "
      "store bigint, "
      "total_quantity bigint, total_revenue float8, events bigint, mean_revenue float8)");
  pg.query(
      "CREATE TABLE checked (window_start timestamptz, window_end timestamptz, product_id text, "
      "store text, "
      "total_quantity bigint CHECK (total_quantity < 10), total_revenue float8, events bigint, "
      "mean_revenue float8)");
  pg.query(
      "CREATE TABLE unindexed (window_start timestamptz, window_end timestamptz, product_id text, "
      "store text, "
      "total_quantity bigint, total_revenue float8, events bigint, mean_revenue float8)");
  struct Case {
    std::string sink;
    std::vector<std::string> said;
  };
  const std::vector<Case> cases = {
      {sink_keys(pg, "typed", ""),
       {"table \"typed\": invalid input syntax for type bigint", "(SQLSTATE 22P02)", "line ",
        "the row: 2023-11-14T"}},
      {sink_keys(pg, "checked", ""),
       {"table \"checked\": new row for relation \"checked\" violates check constraint"}},
      {sink_keys(pg, "missing", ""),
       {"table \"missing\": relation \"missing\" does not exist (SQLSTATE 42P01)"}},
      {sink_keys(pg, "unindexed", "mode = \"upsert\""),
       {"table \"unindexed\": there is no unique or exclusion constraint matching the ON CONFLICT "
        "specification"}},
      {fmt::format("dsn = \"host=127.0.0.1 port={} dbname=postgres user=nobody\"\ntable = \"x\"",
                   pg.port()),
       {"cannot connect for table \"x\"", "role \"nobody\" does not exist"}},
  };
  for (const Case& c : cases) {
    write_file(dir.file("p.toml"), config(dir, file_source(dir), c.sink));
    SluiceRun run(dir, dir.file("p.toml"));
    ASSERT_TRUE(run.start());
    const auto st = run.process().wait_exit(kExitTimeout);
    ASSERT_TRUE(st.has_value());
    EXPECT_TRUE(st->exited && st->code == 1) << st->describe() << run.stderr_text();
    const std::string log = run.stderr_text();
    for (const std::string& s : c.said)
      EXPECT_NE(log.find(s), std::string::npos) << s << "\n" << log;
    EXPECT_NE(log.find("rows not written"), std::string::npos) << log;
  }
  EXPECT_EQ(pg.query("SELECT (SELECT count(*) FROM typed) + (SELECT count(*) FROM checked)"),
            "0\n");
}

TEST(PostgresSink, ConfigErrorsNameTheKey) {
  TempDir dir;
  write_file(dir.file("events.ndjson"), "");
  const std::string base =
      config(dir, file_source(dir), "dsn = \"host=127.0.0.1 port=5432\"\ntable = \"t\"");
  struct Case {
    std::string from, to, message;
  };
  const std::vector<Case> cases = {
      {"dsn = \"host=127.0.0.1 port=5432\"\n", "", "missing required key \"dsn\""},
      {"table = \"t\"", "", "missing required key \"table\""},
      {"table = \"t\"", "table = \"t\"\nmode = \"merge\"", "mode"},
      {"table = \"t\"", "table = \"t\"\nmode = \"replace\"", "replace deletes the rows"},
      {"dsn = \"host=127.0.0.1 port=5432\"", "dsn = \"host\"",
       "dsn: not a libpq connection string"},
      {"dsn = \"host=127.0.0.1 port=5432\"", "dsn = \"host=db1.example,db2.example\"",
       "with several hosts, each must be a numeric address"},
      {"table = \"t\"", "table = \"t\"\ncolumns = { store = \"x\" }",
       "columns: store: every row has a column"},
      {"table = \"t\"", "table = \"t\"\ncolumns = { day = 1 }",
       "columns: day: expected the column's text"},
      {"table = \"t\"", "table = \"t\"\nformat = \"csv\"", "format does not apply"},
      {"table = \"t\"", "table = \"t\"\nkey = \"x\"",
       "key \"key\" is not valid for a postgres sink"},
  };
  for (const Case& c : cases) {
    std::string text = base;
    const size_t at = text.find(c.from);
    ASSERT_NE(at, std::string::npos) << c.from;
    text.replace(at, c.from.size(), c.to);
    write_file(dir.file("bad.toml"), text);
    const CommandResult r = run_command({sluice_bin(), "check", dir.file("bad.toml")}, dir);
    EXPECT_EQ(r.status.code, 2) << c.to;
    EXPECT_NE(r.err.find(c.message), std::string::npos) << c.to << "\n" << r.err;
    EXPECT_NE(r.err.find("bad.toml:"), std::string::npos) << r.err;
  }
  // A good one: check describes the sink.
  write_file(dir.file("good.toml"), base);
  const CommandResult ok = run_command({sluice_bin(), "check", dir.file("good.toml")}, dir);
  EXPECT_EQ(ok.status.code, 0) << ok.err;
  EXPECT_NE((ok.out + ok.err).find("postgres table t, append"), std::string::npos)
      << ok.out << ok.err;
}

}  // namespace
}  // namespace sluice::integration
