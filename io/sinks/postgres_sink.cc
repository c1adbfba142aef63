// The PostgreSQL sink: result rows into a table, through libpq in
// non-blocking mode, its socket driven by the gatherer's io_uring (a one-shot
// poll on PQsocket(), re-armed for POLLIN, or POLLIN | POLLOUT while libpq has
// bytes it could not send).
//
// Rows are encoded as COPY text lines (tab-separated, `\N` for null,
// backslash escapes) into a fill buffer; a flush sends the whole buffer as one
// transaction in one simple query:
//
//   append:  BEGIN; COPY t (cols) FROM STDIN; COMMIT
//   replace: BEGIN; DELETE FROM t WHERE <constant columns>; COPY ...; COMMIT
//            (the DELETE in the run's first transaction only)
//   upsert:  BEGIN; COPY sluice_stage (cols) FROM STDIN;
//            INSERT INTO t (cols) SELECT cols FROM sluice_stage
//              ON CONFLICT (<key>) DO UPDATE SET window_end, <aggregates>; COMMIT
//
// (COPY is not allowed in libpq's pipeline mode, and needs none: the
// statements after it run once the copy data has ended, in the same round
// trip.) A flush counts as written only when its COMMIT is answered.
//
// On each new connection a set-up query runs first: CREATE TABLE IF NOT
// EXISTS (with `create`), a check that the table has the columns (and, for
// upsert, a unique index matching the key: an INSERT ... ON CONFLICT of no
// rows, which PostgreSQL plans and so refuses without one), and the session's
// staging table (upsert).
//
// Failures: a connection that cannot be made, is lost, or is ended by the
// server (shutdown, restart, too many clients, starting up) makes the sink
// reconnect with a capped back-off and send the unacknowledged flush again;
// so does a flush or set-up unanswered for `timeout`. Errors that will not
// heal (a type or constraint error, a missing table or column, no unique
// index for upsert, authentication) are logged naming the table (and the row,
// where the server names a COPY line) and fail the sink: exit status 1. While
// the server is away, rows wait in the two buffers, bounded by
// pending_bytes_max, then firing pauses (back-pressure).
//
// Host names: PQconnectStart would resolve them with a blocking getaddrinfo on
// shard 0, so a single host name is resolved off the shard (io/resolver.h)
// and passed to libpq as `hostaddr` (the name stays `host`, for TLS and
// .pgpass); a list of several hosts must be numeric or socket directories.
#include <arpa/inet.h>
#include <poll.h>
#include <sys/socket.h>

#include <libpq-fe.h>

#include <algorithm>
#include <any>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <regex>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "core/assert.h"
#include "core/byte_buffer.h"
#include "core/config_reader.h"
#include "core/log.h"
#include "core/timestamp.h"
#include "io/resolver.h"
#include "io/sink.h"
#include "io/sinks/row_template.h"
#include "operators/event.h"
#include "operators/json_text.h"

namespace sluice {

namespace {

constexpr int64_t kBackoffMinNs = 100 * kNsPerMs;
constexpr int64_t kBackoffMaxNs = 5 * kNsPerS;
// COPY data goes to libpq in pieces of this size, the next only once libpq
// has sent the last: libpq copies what it is given into its own output
// buffer, which so stays this small (and is not reallocated once grown).
constexpr size_t kCopyChunkBytes = 64 * 1024;
constexpr size_t kPendingMax = 4096;
// PostgreSQL truncates longer identifiers (NAMEDATALEN - 1).
constexpr size_t kIdentifierBytesMax = 63;
constexpr size_t kConstantColumnsMax = 16;
// A server that names a COPY line in an error: that many bytes of it are logged.
constexpr size_t kLoggedRowBytesMax = 300;
constexpr std::string_view kStageTable = "sluice_stage";
constexpr uint32_t kPollEvents[2] = {POLLIN, POLLOUT};

enum class Mode : uint8_t { append, upsert, replace };

struct PostgresSinkOptions {
  std::string dsn;
  std::string schema;  // empty: the search path's
  std::string table;
  bool create = false;
  Mode mode = Mode::append;
  std::vector<std::pair<std::string, std::string>> columns;  // constant columns, by name
  int64_t timeout_ns = 30 * kNsPerS;  // connect + set-up, or one flush, answered within this
  // From the dsn (or PGHOST): a single host name to resolve off the shard.
  std::string resolve_host;
  uint16_t port = 5432;
};

const PostgresSinkOptions& options_of(const SinkConfig& cfg) {
  return std::any_cast<const PostgresSinkOptions&>(cfg.options);
}

std::string quote_ident(std::string_view name) {
  std::string out = "\"";
  for (char c : name) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + '"';
}

// An escape-string literal, the same whatever standard_conforming_strings says.
std::string quote_literal(std::string_view text) {
  std::string out = "E'";
  for (char c : text) {
    if (c == '\\' || c == '\'') out += c;
    out += c;
  }
  return out + '\'';
}

// A value in COPY's text format: backslash, tab, newline and carriage return escaped.
size_t copy_escape_bytes_max(size_t n) {
  return 2 * n;
}
char* copy_escape(std::string_view text, char* out) {
  for (char c : text) {
    switch (c) {
      case '\\':
        *out++ = '\\';
        *out++ = '\\';
        break;
      case '\t':
        *out++ = '\\';
        *out++ = 't';
        break;
      case '\n':
        *out++ = '\\';
        *out++ = 'n';
        break;
      case '\r':
        *out++ = '\\';
        *out++ = 'r';
        break;
      default:
        *out++ = c;
    }
  }
  return out;
}

// libpq's messages span lines ("...failed: Connection refused\n\tIs the
// server running..."): one log line each.
std::string one_line(std::string text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  std::string out;
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '\n' || text[i] == '\t') {
      if (!out.empty() && out.back() != ' ') out += ' ';
    } else {
      out += text[i];
    }
  }
  return out;
}

bool numeric_address(const std::string& host) {
  in6_addr a6;
  in_addr a4;
  return inet_pton(AF_INET, host.c_str(), &a4) == 1 || inet_pton(AF_INET6, host.c_str(), &a6) == 1;
}

// ---------------------------------------------------------------------------
// Config

constexpr std::string_view kPostgresSinkKeys[] = {"dsn",  "table",   "create",
                                                  "mode", "columns", "timeout"};

void check_identifier(TableReader& r, std::string_view key, std::string_view name) {
  if (name.empty() || name.size() > kIdentifierBytesMax) {
    r.error(key,
            fmt::format("\"{}\": a PostgreSQL name is 1 to {} bytes", name, kIdentifierBytesMax));
  }
}

void parse_postgres_sink(TableReader& r, SinkConfig& sink, ConfigContext& ctx) {
  PostgresSinkOptions o;
  if (r.string("dsn", o.dsn, Need::required)) {
    char* err = nullptr;
    PQconninfoOption* opts = PQconninfoParse(o.dsn.c_str(), &err);
    if (opts == nullptr) {
      std::string why = err != nullptr ? err : "out of memory";
      while (!why.empty() && why.back() == '\n') why.pop_back();
      r.error("dsn", fmt::format("not a libpq connection string: {}", why));
      PQfreemem(err);
    } else {
      std::string host, hostaddr, port;
      for (PQconninfoOption* p = opts; p->keyword != nullptr; ++p) {
        if (p->val == nullptr) continue;
        if (std::strcmp(p->keyword, "host") == 0) host = p->val;
        if (std::strcmp(p->keyword, "hostaddr") == 0) hostaddr = p->val;
        if (std::strcmp(p->keyword, "port") == 0) port = p->val;
      }
      PQconninfoFree(opts);
      if (host.empty() && hostaddr.empty()) {
        if (const char* env = std::getenv("PGHOST")) host = env;
      }
      if (!port.empty() && port.find(',') == std::string::npos) {
        char* end = nullptr;
        const long p = std::strtol(port.c_str(), &end, 10);
        if (*end == '\0' && p > 0 && p <= 65535) o.port = uint16_t(p);
      }
      const bool list = host.find(',') != std::string::npos;
      if (hostaddr.empty() && !host.empty()) {
        auto is_name = [](const std::string& h) {
          return !h.empty() && h[0] != '/' && h[0] != '@' && !numeric_address(h);
        };
        if (!list && is_name(host)) {
          o.resolve_host = host;
        } else if (list) {
          size_t at = 0;
          while (at <= host.size()) {
            const size_t comma = std::min(host.find(',', at), host.size());
            if (is_name(host.substr(at, comma - at))) {
              r.error("dsn",
                      fmt::format(
                          "host \"{}\": with several hosts, each must be a numeric address or a "
                          "socket directory (libpq would look names up with a blocking call on "
                          "the gatherer's shard); give hostaddr, or one host name",
                          host.substr(at, comma - at)));
              break;
            }
            at = comma + 1;
          }
        }
      }
    }
  }
  std::string table;
  if (r.string("table", table, Need::required)) {
    const size_t dot = table.find('.');
    if (dot != std::string::npos) {
      o.schema = table.substr(0, dot);
      o.table = table.substr(dot + 1);
      check_identifier(r, "table", o.schema);
    } else {
      o.table = table;
    }
    check_identifier(r, "table", o.table);
  }
  r.boolean("create", o.create);
  r.choice("mode", o.mode,
           {{"append", Mode::append}, {"upsert", Mode::upsert}, {"replace", Mode::replace}});
  // Every column a row has, to refuse a constant column of the same name.
  std::vector<std::string> taken = {"window_start", "window_end"};
  if (ctx.schema != nullptr)
    taken.insert(taken.end(), ctx.schema->key.begin(), ctx.schema->key.end());
  if (ctx.aggregates != nullptr) {
    for (const AggregateConfig& a : *ctx.aggregates) taken.push_back(a.name);
  }
  for (const std::string& name : taken) {
    if (name.size() > kIdentifierBytesMax) {
      r.error("table", fmt::format("column \"{}\" is longer than PostgreSQL's names ({} bytes)",
                                   name, kIdentifierBytesMax));
    }
  }
  if (const toml::node* columns = r.find("columns")) {
    const toml::table* t = columns->as_table();
    if (t == nullptr) {
      r.error("columns", "expected a table of column = \"constant text\"");
    } else if (t->size() > kConstantColumnsMax) {
      r.error("columns", fmt::format("at most {} constant columns", kConstantColumnsMax));
    } else {
      for (const auto& [name, value] : *t) {
        const auto* text = value.as_string();
        const std::string n(name.str());
        if (text == nullptr) {
          r.error_at(value, "columns",
                     fmt::format("{}: expected the column's text, as a string", n));
        } else if (n.empty() || n.size() > kIdentifierBytesMax) {
          r.error_at(
              value, "columns",
              fmt::format("\"{}\": a PostgreSQL name is 1 to {} bytes", n, kIdentifierBytesMax));
        } else if (std::ranges::find(taken, n) != taken.end()) {
          r.error_at(
              value, "columns",
              fmt::format(
                  "{}: every row has a column of that name (window bounds, key fields, aggregates)",
                  n));
        } else if (text->get().find('\0') != std::string::npos) {
          r.error_at(value, "columns",
                     fmt::format("{}: PostgreSQL text cannot hold a NUL byte", n));
        } else {
          o.columns.emplace_back(n, text->get());
        }
      }
    }
  }
  if (o.mode == Mode::replace) {
    const toml::node* columns = r.find("columns");
    if (columns == nullptr || (columns->as_table() != nullptr && columns->as_table()->empty())) {
      r.error("mode",
              "replace deletes the rows whose constant columns hold this run's values: it needs "
              "`columns`");
    }
  }
  r.duration("timeout", o.timeout_ns, Zero::rejected);
  if (sink.format != OutputFormat::ndjson) {
    r.error("format", "a postgres sink writes table rows (COPY); format does not apply");
  }
  sink.options = std::move(o);
}

// ---------------------------------------------------------------------------
// The sink

// What the table's columns are, and the SQL of each step, built once.
struct Statements {
  std::string table;     // quoted, qualified
  std::string columns;   // "window_start","window_end",<keys>,<aggregates>,<constants>
  std::string setup;     // after each connect
  // A flush is two queries: kTxBegin (whose answer, the transaction id, is
  // flushed by the server at ReadyForQuery, before anything can block), then
  // one of these, inside that transaction.
  std::string tx;        // one flush
  std::string tx_first;  // the run's first flush (replace: with the DELETE)
};

constexpr const char* kTxBegin = "BEGIN; SELECT txid_current();";

const char* aggregate_type(const AggregateConfig& a, const SchemaConfig& schema) {
  // count and approx_count_distinct count; avg divides; sum, min and max keep the field's type.
  if (a.fn == AggFn::avg) return "double precision";
  if (a.field_index >= 0 && schema.fields[size_t(a.field_index)].type == FieldType::float64) {
    return a.fn == AggFn::sum || a.fn == AggFn::min || a.fn == AggFn::max ? "double precision"
                                                                          : "bigint";
  }
  return "bigint";
}

Statements build_statements(const PostgresSinkOptions& o, const PipelineConfig& p) {
  Statements s;
  s.table = (o.schema.empty() ? "" : quote_ident(o.schema) + ".") + quote_ident(o.table);
  std::vector<std::string> cols = {"window_start", "window_end"};
  std::vector<std::string> key = {};
  for (const auto& [name, value] : o.columns) key.push_back(quote_ident(name));
  key.push_back(quote_ident("window_start"));
  for (const std::string& k : p.schema.key) {
    cols.push_back(k);
    key.push_back(quote_ident(k));
  }
  for (const AggregateConfig& a : p.aggregates) cols.push_back(a.name);
  for (const auto& [name, value] : o.columns) cols.push_back(name);
  for (size_t i = 0; i < cols.size(); ++i) s.columns += (i ? "," : "") + quote_ident(cols[i]);
  std::string key_list;
  for (size_t i = 0; i < key.size(); ++i) key_list += (i ? "," : "") + key[i];

  s.setup = "SET client_min_messages = warning;";
  if (o.create) {
    std::string defs = "\"window_start\" timestamptz NOT NULL, \"window_end\" timestamptz NOT NULL";
    for (const std::string& k : p.schema.key) defs += ", " + quote_ident(k) + " text NOT NULL";
    for (const AggregateConfig& a : p.aggregates) {
      defs += fmt::format(", {} {}", quote_ident(a.name), aggregate_type(a, p.schema));
    }
    for (const auto& [name, value] : o.columns) defs += ", " + quote_ident(name) + " text NOT NULL";
    s.setup += fmt::format("CREATE TABLE IF NOT EXISTS {} ({}, PRIMARY KEY ({}));", s.table, defs,
                           key_list);
  }
  std::string updates = "\"window_end\" = EXCLUDED.\"window_end\"";
  for (const AggregateConfig& a : p.aggregates) {
    updates += fmt::format(", {0} = EXCLUDED.{0}", quote_ident(a.name));
  }
  const std::string upsert =
      fmt::format("INSERT INTO {} ({}) SELECT {} FROM {} ON CONFLICT ({}) DO UPDATE SET {}",
                  s.table, s.columns, s.columns, kStageTable, key_list, updates);
  if (o.mode == Mode::upsert) {
    // The staging table of this session, and an upsert of no rows: planning it
    // finds (or refuses) the unique index ON CONFLICT needs.
    s.setup += fmt::format(
        "CREATE TEMP TABLE IF NOT EXISTS {} ON COMMIT DELETE ROWS AS SELECT {} FROM {} WITH NO "
        "DATA;",
        kStageTable, s.columns, s.table);
    s.setup += upsert + ";";
    s.tx = fmt::format("COPY {} ({}) FROM STDIN; {}; COMMIT", kStageTable, s.columns, upsert);
    s.tx_first = s.tx;
  } else {
    s.setup += fmt::format("SELECT {} FROM {} LIMIT 0;", s.columns, s.table);
    s.tx = fmt::format("COPY {} ({}) FROM STDIN; COMMIT", s.table, s.columns);
    s.tx_first = s.tx;
    if (o.mode == Mode::replace) {
      std::string where;
      for (const auto& [name, value] : o.columns) {
        where += fmt::format("{}{} = {}", where.empty() ? "" : " AND ", quote_ident(name),
                             quote_literal(value));
      }
      s.tx_first = fmt::format("DELETE FROM {} WHERE {}; COPY {} ({}) FROM STDIN; COMMIT", s.table, where,
                               s.table, s.columns);
    }
  }
  return s;
}

class PostgresSink final : public Sink {
 public:
  PostgresSink(SinkHost& host, const SinkConfig& cfg, SinkMetrics& metrics)
      : host_(host),
        cfg_(cfg),
        o_(options_of(cfg)),
        metrics_(metrics),
        sql_(build_statements(o_, host.config())),
        poll_done_{Completion::to<&PostgresSink::on_read_ready>(this),
                   Completion::to<&PostgresSink::on_write_ready>(this)} {
    const PipelineConfig& p = host.config();
    for (const auto& [name, value] : o_.columns) {
      constants_.push_back('\t');
      constants_.resize(constants_.size() + copy_escape_bytes_max(value.size()));
      char* end = copy_escape(
          value, constants_.data() + constants_.size() - copy_escape_bytes_max(value.size()));
      constants_.resize(size_t(end - constants_.data()));
    }
    // The longest line: both window bounds, every key field (their text is
    // within kKeyBytesMax in all, doubled by escapes), every aggregate, the
    // constants, the separators.
    row_max_ = 2 * kRfc3339BytesMax + copy_escape_bytes_max(kKeyBytesMax) +
               p.schema.key.size() * kNumberBytesMax + p.aggregates.size() * kNumberBytesMax +
               constants_.size() + p.schema.key.size() + p.aggregates.size() + 4;
    const size_t bytes = std::max<size_t>(cfg.buffer_bytes, row_max_ * 2);
    fill_ = std::make_unique<ByteBuffer>(bytes);
    flight_ = std::make_unique<ByteBuffer>(bytes);
    // The first flush() connects at once (retry_at_ = 0): a missing table or
    // a wrong password is found at start-up, not with the first rows.
  }
  ~PostgresSink() override {
    if (conn_ != nullptr) PQfinish(conn_);
  }

  size_t take(const SinkWindow& w, size_t from, int64_t now) override;
  void window_taken(const SinkWindow& w) override {
    if (w.count > 0 && windows_.size() < kPendingMax)
      windows_.push_back(Pending{encoded_, w.fire_ns, w.end});
  }
  bool flush(int64_t now, bool stuck, bool final) override;
  int64_t next_deadline() const override;
  uint64_t unwritten_bytes() const override { return encoded_ - acknowledged_; }
  bool idle() const override {
    if (failed_) return true;
    return fill_->empty() && !flight_pending_ && !delete_due() && state_ != State::resolving &&
           state_ != State::connecting && state_ != State::setup;
  }
  bool failed() const override { return failed_; }
  uint64_t rows_written() const override { return rows_written_; }
  std::string failure() const override {
    return fmt::format("sink {} failed ({}): {} rows written, {} rows not written", cfg_.name,
                       failure_, rows_written_, rows_lost_);
  }
  std::string describe_pending() const override {
    if (failed_ || (unwritten_bytes() == 0 && !delete_due())) return {};
    return fmt::format("sink {}: {} rows ({} bytes) not yet committed to table {} ({})", cfg_.name,
                       fill_rows_ + flight_rows_, unwritten_bytes(), sql_.table, state_name());
  }
  void refresh_gauges() override { metrics_.buffer_bytes.set(int64_t(unwritten_bytes())); }

  // Rows committed (a replay re-sends rows; see the README on at-least-once).
  uint64_t position() const override { return rows_written_; }
  std::expected<void, std::string> pre_commit(uint64_t) override { return {}; }
  std::expected<void, std::string> recover(uint64_t) override { return {}; }

 private:
  enum class State : uint8_t { backoff, resolving, connecting, setup, ready, busy };
  // Where a query (set-up or flush) stands.
  enum class Phase : uint8_t { results, copy };
  struct Pending {
    uint64_t end;  // encoded bytes up to this window's last row
    int64_t fire_ns;
    int64_t window_end_ns;
  };

  const char* state_name() const {
    switch (state_) {
      case State::backoff:
        return "reconnecting";
      case State::resolving:
        return "resolving";
      case State::connecting:
        return "connecting";
      case State::setup:
        return "setting up";
      case State::ready:
        return "connected";
      case State::busy:
        return "writing";
    }
    return "";
  }
  // replace: the run's DELETE has not been committed, and the run is ending (with or without rows).
  bool delete_due() const { return o_.mode == Mode::replace && !deleted_ && final_seen_; }
  bool wants_connection() const {
    return !fill_->empty() || flight_pending_ || !setup_once_ || delete_due();
  }

  size_t encode_row(const ResultRowView& row, int64_t size_ns, char* out);
  void connect();
  void connect_poll();
  void on_connected();
  void connect_failed(std::string why);
  void start_query(const std::string& sql);
  void start_tx();
  void drive();
  void pump();
  void query_done();
  void flight_committed();
  void want(uint32_t mask);
  void arm(int k);
  void on_poll(int k, const io_uring_cqe& cqe);
  void on_read_ready(const io_uring_cqe& cqe) { on_poll(0, cqe); }
  void on_write_ready(const io_uring_cqe& cqe) { on_poll(1, cqe); }
  void close_connection();
  void drop(const std::string& why);
  void fail(const std::string& why);
  std::string error_text(const PGresult* r) const;
  static void on_notice(void* arg, const PGresult* r);

  SinkHost& host_;
  const SinkConfig& cfg_;
  const PostgresSinkOptions& o_;
  SinkMetrics& metrics_;
  const Statements sql_;
  Completion poll_done_[2];  // reading, writing
  Resolver resolver_;
  std::string hostaddr_;

  PGconn* conn_ = nullptr;
  State state_ = State::backoff;
  Phase phase_ = Phase::results;
  int64_t retry_at_ = 0;
  int64_t backoff_ns_ = kBackoffMinNs;
  int64_t reply_deadline_ = kTimeMax;
  bool connected_once_ = false;
  bool setup_once_ = false;

  // The one-shot poll on the connection's socket.
  struct Poll {
    bool armed = false;
    uint64_t generation = 0;  // of the connection it watches
  };
  Poll polls_[2];            // reading, writing
  uint64_t generation_ = 0;  // of the current connection
  uint32_t want_mask_ = 0;   // POLLIN / POLLOUT the query in progress waits for

  // The query in progress.
  std::string error_;         // the first error result's text (empty: none)
  bool error_heals_ = false;  // that error is a reason to reconnect, not to fail
  std::string last_command_;  // command status of the last result ("COMMIT")
  size_t copy_at_ = 0;        // flight bytes given to libpq
  bool copy_ended_ = false;
  bool tx_deletes_ = false;  // this transaction carries replace's DELETE
  int64_t tx_started_ns_ = 0;

  size_t row_max_ = 0;
  std::string constants_;  // "\t<value>..." of the constant columns, escaped
  RowRenderer renderer_;
  int64_t window_start_ = kTimeMax;
  int64_t window_size_ = 0;
  char start_text_[kRfc3339BytesMax];
  char end_text_[kRfc3339BytesMax];
  size_t start_len_ = 0, end_len_ = 0;
  std::unique_ptr<ByteBuffer> fill_;    // COPY lines being encoded
  std::unique_ptr<ByteBuffer> flight_;  // the flush being written, until committed
  bool flight_pending_ = false;         // flight_ holds a transaction to (re)send
  std::string tx_xid_;                  // the flush transaction's id, once the server said it
  bool tx_begun_ = false;               // kTxBegin answered: the rows' query is next
  std::string stale_xid_;               // a flush transaction left without an answer
  std::string stale_status_;            // txid_status() of it, asked at the next set-up
  uint32_t fill_rows_ = 0, flight_rows_ = 0;
  int64_t dirty_since_ = kTimeMax;
  bool final_seen_ = false;
  bool deleted_ = false;  // replace: the run's DELETE is committed

  uint64_t encoded_ = 0;
  uint64_t acknowledged_ = 0;
  std::vector<Pending> windows_;
  uint64_t rows_written_ = 0;
  uint64_t rows_lost_ = 0;
  bool failed_ = false;
  std::string failure_;
};

size_t PostgresSink::encode_row(const ResultRowView& row, int64_t size_ns, char* out) {
  if (row.window_start != window_start_ || size_ns != window_size_) {
    window_start_ = row.window_start;
    window_size_ = size_ns;
    start_len_ = format_rfc3339(window_start_, start_text_);
    end_len_ = format_rfc3339(window_start_ + size_ns, end_text_);
  }
  char* p = out;
  std::memcpy(p, start_text_, start_len_);
  p += start_len_;
  *p++ = '\t';
  std::memcpy(p, end_text_, end_len_);
  p += end_len_;
  renderer_.begin(row, size_ns);
  const KeyParts& k = renderer_.key_parts();
  for (size_t i = 0; i < k.count; ++i) {
    *p++ = '\t';
    p = k.is_int[i] ? p + write_int64(k.integer[i], p) : copy_escape(k.text[i], p);
  }
  const size_t aggregates = host_.config().aggregates.size();
  for (size_t a = 0; a < aggregates; ++a) {
    *p++ = '\t';
    const AggValue v = row.agg(a);
    if (v.kind == AggValue::Kind::int64) {
      p += write_int64(v.v.i, p);
    } else if (v.kind == AggValue::Kind::float64) {
      p += write_double(v.v.f, p);
    } else {
      *p++ = '\\';
      *p++ = 'N';
    }
  }
  std::memcpy(p, constants_.data(), constants_.size());
  p += constants_.size();
  *p++ = '\n';
  return size_t(p - out);
}

size_t PostgresSink::take(const SinkWindow& w, size_t from, int64_t now) {
  if (failed_) {
    rows_lost_ += w.count - from;
    return w.count - from;
  }
  const bool was_empty = fill_->empty();
  const int64_t size_ns = w.end - w.start;
  size_t i = from;
  for (; i < w.count && fill_->room() >= row_max_; ++i) {
    const size_t n = encode_row(w.row(i), size_ns, fill_->tail());
    fill_->commit(n);
    encoded_ += n;
    ++fill_rows_;
  }
  if (was_empty && !fill_->empty()) dirty_since_ = now;
  return i - from;
}

int64_t PostgresSink::next_deadline() const {
  if (failed_) return kTimeMax;
  int64_t t = kTimeMax;
  if (state_ == State::backoff && wants_connection()) t = retry_at_;
  if (state_ == State::resolving) t = host_.reactor().now() + Resolver::kPollNs;
  // A flush falls due only where flush() can start one (connected and idle).
  if (state_ == State::ready && !fill_->empty() && dirty_since_ != kTimeMax) {
    t = std::min(t, dirty_since_ + cfg_.flush_interval_ns);
  }
  return std::min(t, reply_deadline_);
}

bool PostgresSink::flush(int64_t now, bool stuck, bool final) {
  if (failed_) return false;
  final_seen_ |= final;
  if (now >= reply_deadline_) {
    // A host gone silent, a server stopped (SIGSTOP) or far too slow: start over.
    drop(fmt::format("no answer within {} ms ({}{})", o_.timeout_ns / kNsPerMs, state_name(),
                     state_ == State::busy ? fmt::format(", {} of {} COPY bytes given to libpq",
                                                         copy_at_, flight_->size())
                                           : ""));
    return true;
  }
  if (state_ == State::resolving) {
    if (resolver_.poll() == Resolver::State::resolving) return false;
    connect();
    return true;
  }
  if (state_ == State::backoff) {
    if (now < retry_at_ || !wants_connection()) return false;
    connect();
    return true;
  }
  if (state_ != State::ready) return false;
  if (fill_->empty()) {
    if (!delete_due()) return false;
    // replace with no rows at all (or none left): the DELETE alone, with an empty COPY.
    flight_pending_ = true;
    start_tx();
    return true;
  }
  const bool due = now - dirty_since_ >= cfg_.flush_interval_ns ||
                   fill_->size() >= fill_->capacity() / 2 || stuck || final;
  if (!due) return false;
  std::swap(fill_, flight_);
  flight_rows_ = fill_rows_;
  fill_rows_ = 0;
  dirty_since_ = kTimeMax;
  flight_pending_ = true;
  start_tx();
  return true;
}

// ---------------------------------------------------------------------------
// Connecting

void PostgresSink::connect() {
  if (!o_.resolve_host.empty() && state_ != State::resolving) {
    if (resolver_.start(o_.resolve_host, o_.port) == Resolver::State::resolving) {
      state_ = State::resolving;
      return;
    }
  }
  if (!o_.resolve_host.empty()) {
    if (resolver_.state() != Resolver::State::done) {
      state_ = State::backoff;
      connect_failed(fmt::format("cannot resolve {}: {}", o_.resolve_host, resolver_.error()));
      return;
    }
    char text[INET6_ADDRSTRLEN] = {};
    const sockaddr_storage& a = resolver_.address();
    const void* raw =
        a.ss_family == AF_INET6
            ? static_cast<const void*>(&reinterpret_cast<const sockaddr_in6&>(a).sin6_addr)
            : static_cast<const void*>(&reinterpret_cast<const sockaddr_in&>(a).sin_addr);
    inet_ntop(a.ss_family, raw, text, sizeof text);
    hostaddr_ = text;
  }
  // The dsn first, so what follows it wins: a resolved address, UTF-8.
  const char* keywords[] = {"dbname", "fallback_application_name", "client_encoding", "hostaddr",
                            nullptr};
  const char* values[] = {o_.dsn.c_str(), "sluice", "UTF8", hostaddr_.c_str(), nullptr};
  if (hostaddr_.empty()) keywords[3] = values[3] = nullptr;
  conn_ = PQconnectStartParams(keywords, values, /*expand_dbname=*/1);
  ++generation_;
  if (conn_ == nullptr) {
    state_ = State::backoff;
    connect_failed("out of memory");
    return;
  }
  PQsetNoticeReceiver(conn_, &PostgresSink::on_notice, this);
  state_ = State::connecting;
  reply_deadline_ = host_.reactor().now() + o_.timeout_ns;
  if (PQstatus(conn_) == CONNECTION_BAD) {
    connect_failed(PQerrorMessage(conn_));
    return;
  }
  // libpq: behave as if PQconnectPoll had said PGRES_POLLING_WRITING.
  want(POLLOUT);
}

void PostgresSink::connect_poll() {
  switch (PQconnectPoll(conn_)) {
    case PGRES_POLLING_READING:
      want(POLLIN);
      return;
    case PGRES_POLLING_WRITING:
      want(POLLOUT);
      return;
    case PGRES_POLLING_OK:
      on_connected();
      return;
    default:
      connect_failed(PQerrorMessage(conn_));
      return;
  }
}

void PostgresSink::on_connected() {
  if (PQsetnonblocking(conn_, 1) != 0) {
    drop(fmt::format("cannot make the connection non-blocking: {}", PQerrorMessage(conn_)));
    return;
  }
  if (connected_once_) log_info("sink {}: reconnected to PostgreSQL", cfg_.name);
  connected_once_ = true;
  state_ = State::setup;
  stale_status_.clear();
  if (!stale_xid_.empty()) {
    // The last flush's transaction got no answer: did it commit after all?
    start_query(fmt::format("SELECT txid_status({});", stale_xid_) + sql_.setup);
    return;
  }
  start_query(sql_.setup);
}

// Whether a connection that could not be made is worth trying again: the
// server was not there, or said it cannot take one now. Anything else the
// server said (a password, a role or database that does not exist, no
// pg_hba.conf entry) will not heal. libpq gives no SQLSTATE for these, so
// the messages decide (the server's, in English unless lc_messages says
// otherwise).
bool connect_error_heals(const std::string& why) {
  static constexpr std::string_view kHeals[] = {"starting up",
                                                "shutting down",
                                                "in recovery mode",
                                                "not yet accepting connections",
                                                "too many clients",
                                                "terminating connection",
                                                "not accepting connections",
                                                "remaining connection slots"};
  // What the client says when the server is not there (yet) or the network
  // dropped it. Anything else it says (no password supplied, a certificate or
  // host name that does not verify, channel binding) will not heal either.
  static constexpr std::string_view kNetwork[] = {"Connection refused",
                                                  "could not connect",
                                                  "timeout expired",
                                                  "No route to host",
                                                  "Network is unreachable",
                                                  "server closed the connection unexpectedly",
                                                  "Connection reset",
                                                  "could not send",
                                                  "could not receive",
                                                  "No such file or directory",
                                                  "EOF detected"};
  for (std::string_view h : kHeals) {
    if (why.find(h) != std::string::npos) return true;
  }
  if (why.find("FATAL") != std::string::npos) return false;
  for (std::string_view h : kNetwork) {
    if (why.find(h) != std::string::npos) return true;
  }
  return false;
}

void PostgresSink::connect_failed(std::string why) {
  why = one_line(std::move(why));
  metrics_.errors.add();
  if (!connect_error_heals(why)) {
    fail(fmt::format("cannot connect for table {}: {}", sql_.table, why));
    return;
  }
  drop(why);
}

// ---------------------------------------------------------------------------
// Queries

void PostgresSink::start_query(const std::string& sql) {
  error_.clear();
  error_heals_ = false;
  last_command_.clear();
  phase_ = Phase::results;
  copy_at_ = 0;
  copy_ended_ = false;
  reply_deadline_ = host_.reactor().now() + o_.timeout_ns;
  if (PQsendQuery(conn_, sql.c_str()) == 0) {
    drop(fmt::format("cannot send a query: {}", PQerrorMessage(conn_)));
    return;
  }
  pump();
}

void PostgresSink::start_tx() {
  state_ = State::busy;
  tx_deletes_ = o_.mode == Mode::replace && !deleted_;
  tx_started_ns_ = host_.reactor().now();
  tx_xid_.clear();
  tx_begun_ = false;
  metrics_.writes.add();
  start_query(kTxBegin);
}

void PostgresSink::drive() {
  if (conn_ == nullptr) return;
  switch (state_) {
    case State::connecting:
      connect_poll();
      return;
    case State::setup:
    case State::busy:
      pump();
      return;
    case State::ready:
      // Idle: only the server has something to say (it is shutting down).
      if (PQconsumeInput(conn_) == 0 || PQstatus(conn_) == CONNECTION_BAD) {
        const std::string why = one_line(PQerrorMessage(conn_));
        state_ = State::backoff;  // reconnect when there is something to write
        backoff_ns_ = kBackoffMinNs;
        log_info("sink {}: PostgreSQL closed the idle connection ({})", cfg_.name, why);
        close_connection();
        retry_at_ = host_.reactor().now();
        return;
      }
      want(POLLIN);
      return;
    default:
      return;
  }
}

// Moves the query in progress as far as it goes without waiting.
void PostgresSink::pump() {
  for (;;) {
    if (phase_ == Phase::copy) {
      // Read what the server sent (an error, a notice), so that a readable
      // socket is not reported again and again while the copy waits to write.
      if (PQconsumeInput(conn_) == 0) {
        const std::string why = one_line(PQerrorMessage(conn_));
        drop(why.empty() ? "connection lost during COPY" : why);
        return;
      }
      bool gone = false;  // libpq left COPY mode: an error arrived; collect it
      while (copy_at_ < flight_->size()) {
        const size_t n = std::min(kCopyChunkBytes, flight_->size() - copy_at_);
        const int put = PQputCopyData(conn_, flight_->data() + copy_at_, int(n));
        if (put == 0) {
          want(POLLIN | POLLOUT);
          return;
        }
        if (put < 0) {
          gone = true;
          break;
        }
        copy_at_ += n;
        metrics_.bytes_out.add(n);
        const int f = PQflush(conn_);
        if (f < 0) {
          gone = true;
          break;
        }
        if (f == 1) {
          want(POLLIN | POLLOUT);
          return;
        }
      }
      if (!gone) {
        const int end = PQputCopyEnd(conn_, nullptr);
        if (end == 0) {
          want(POLLIN | POLLOUT);
          return;
        }
        gone = end < 0;
      }
      if (gone && PQstatus(conn_) == CONNECTION_BAD) {
        const std::string why = one_line(PQerrorMessage(conn_));
        drop(why.empty() ? "connection lost during COPY" : why);
        return;
      }
      copy_ended_ = true;
      phase_ = Phase::results;
    }
    const int f = PQflush(conn_);
    if (f < 0 || PQconsumeInput(conn_) == 0) {
      const std::string why = one_line(PQerrorMessage(conn_));
      drop(why.empty() ? "connection lost" : why);
      return;
    }
    bool to_copy = false;
    while (!PQisBusy(conn_)) {
      PGresult* r = PQgetResult(conn_);
      if (r == nullptr) {
        query_done();
        return;
      }
      const ExecStatusType st = PQresultStatus(r);
      if (st == PGRES_COPY_IN) {
        PQclear(r);
        if (copy_ended_) {
          // Still copying after the end was refused: nothing more will come on this connection.
          drop("the COPY could not be ended");
          return;
        }
        to_copy = true;
        break;
      }
      if (st == PGRES_FATAL_ERROR || st == PGRES_NONFATAL_ERROR || st == PGRES_BAD_RESPONSE) {
        metrics_.errors.add();
        if (error_.empty()) {
          error_ = error_text(r);
          const char* state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
          const std::string_view code = state != nullptr ? state : "";
          // Connection exceptions, shutdowns, out of resources, serialization
          // failures and deadlocks: the flush is tried again on a new connection.
          error_heals_ = code.empty() || code.starts_with("08") || code.starts_with("57P") ||
                         code.starts_with("53") || code.starts_with("40");
        }
      } else {
        last_command_ = PQcmdStatus(r);
        if (st == PGRES_TUPLES_OK && PQntuples(r) == 1 && PQnfields(r) == 1 && !PQgetisnull(r, 0, 0)) {
          const char* v = PQgetvalue(r, 0, 0);
          if (state_ == State::busy && tx_xid_.empty()) {
            tx_xid_ = v;  // the flush's transaction: txid_current()
          } else if (state_ == State::setup && !stale_xid_.empty()) {
            stale_status_ = v;  // txid_status() of the last one left unanswered
          }
        }
      }
      PQclear(r);
    }
    if (to_copy) {
      phase_ = Phase::copy;
      continue;
    }
    want(f == 1 ? POLLIN | POLLOUT : POLLIN);
    return;
  }
}

void PostgresSink::query_done() {
  reply_deadline_ = kTimeMax;
  if (!error_.empty() || PQstatus(conn_) == CONNECTION_BAD) {
    if (error_heals_ || PQstatus(conn_) == CONNECTION_BAD) {
      drop(error_.empty() ? "connection lost" : error_);
    } else {
      fail(error_);
    }
    return;
  }
  if (state_ == State::setup) {
    if (!stale_xid_.empty()) {
      if (stale_status_ == "in progress") {
        // Still running on the server (waiting for a lock, say): ask again later
        // rather than send the rows a second time.
        drop(fmt::format("the last flush's transaction {} is still in progress on the server", stale_xid_));
        return;
      }
      const bool committed = stale_status_ == "committed";
      log_info("sink {}: PostgreSQL: the unanswered flush (transaction {}) {}", cfg_.name, stale_xid_,
               committed ? "committed: not sent again" : "did not commit: sending it again");
      stale_xid_.clear();
      if (committed && flight_pending_) flight_committed();
    }
    state_ = State::ready;
    setup_once_ = true;
    backoff_ns_ = kBackoffMinNs;
    if (flight_pending_) {
      // Not committed on the last connection: again.
      metrics_.retries.add();
      start_tx();
      return;
    }
    want(POLLIN);
    return;
  }
  if (!tx_begun_) {
    // BEGIN and the transaction id are in: now the rows.
    if (tx_xid_.empty()) {
      drop("no transaction id from the server");
      return;
    }
    tx_begun_ = true;
    start_query(tx_deletes_ ? sql_.tx_first : sql_.tx);
    return;
  }
  // A flush: committed?
  if (last_command_ != "COMMIT") {
    fail(fmt::format("the transaction for table {} ended with {} instead of COMMIT", sql_.table,
                     last_command_.empty() ? "nothing" : last_command_));
    return;
  }
  state_ = State::ready;
  backoff_ns_ = kBackoffMinNs;
  flight_committed();
  want(POLLIN);
}

// The flush in flight is in the table (its COMMIT was answered, or a later
// connection found its transaction committed).
void PostgresSink::flight_committed() {
  tx_xid_.clear();
  if (tx_deletes_) deleted_ = true;
  metrics_.write_latency.record_interval_ns(tx_started_ns_, host_.reactor().now());
  acknowledged_ += flight_->size();
  rows_written_ += flight_rows_;
  metrics_.rows_out.add(flight_rows_);
  flight_->clear();
  flight_rows_ = 0;
  flight_pending_ = false;
  host_.rows_written();
  size_t done = 0;
  while (done < windows_.size() && windows_[done].end <= acknowledged_) {
    host_.window_written(windows_[done].fire_ns, windows_[done].window_end_ns);
    ++done;
  }
  windows_.erase(windows_.begin(), windows_.begin() + long(done));
}

// "PostgreSQL refused ... for table t: <message> (SQLSTATE x); detail; the row".
std::string PostgresSink::error_text(const PGresult* r) const {
  auto field = [&](int code) {
    const char* v = PQresultErrorField(r, code);
    return std::string(v != nullptr ? v : "");
  };
  std::string out = field(PG_DIAG_MESSAGE_PRIMARY);
  if (out.empty()) {
    out = one_line(PQresultErrorMessage(r));
  }
  const std::string state = field(PG_DIAG_SQLSTATE);
  const std::string detail = field(PG_DIAG_MESSAGE_DETAIL);
  const std::string context = field(PG_DIAG_CONTEXT);
  std::string text = fmt::format("PostgreSQL refused the rows for table {}: {}", sql_.table, out);
  if (!state.empty()) text += fmt::format(" (SQLSTATE {})", state);
  if (!detail.empty()) text += "; " + detail;
  if (!context.empty()) text += "; " + one_line(context);
  // COPY names the line: show it (the flush's lines are ours, in flight_).
  std::smatch m;
  if (std::regex_search(context, m, std::regex(R"(COPY [^,]+, line ([0-9]+))"))) {
    size_t line = std::stoul(m[1].str());
    std::string_view rest = flight_->view();
    while (--line > 0 && !rest.empty()) {
      const size_t nl = rest.find('\n');
      rest = nl == std::string_view::npos ? std::string_view() : rest.substr(nl + 1);
    }
    std::string row(rest.substr(0, std::min(rest.find('\n'), kLoggedRowBytesMax)));
    std::replace(row.begin(), row.end(), '\t', ' ');
    if (!row.empty()) text += fmt::format("; the row: {}", row);
  }
  return one_line(std::move(text));
}

void PostgresSink::on_notice(void* arg, const PGresult* r) {
  auto* self = static_cast<PostgresSink*>(arg);
  const std::string text = one_line(PQresultErrorMessage(r));
  log_warn("sink {}: PostgreSQL says: {}", self->cfg_.name, text);
}

// ---------------------------------------------------------------------------
// The polls on the socket
//
// Two one-shot polls, one for reading and one for writing, each armed at most
// once: wanting more (POLLOUT beside POLLIN) arms the other, never cancels,
// so no wake-up can be lost between a cancellation and a new poll. A poll of
// an earlier connection (its generation) completes when that socket is shut
// down and is then only re-armed for the current one.

void PostgresSink::want(uint32_t mask) {
  want_mask_ = mask;
  for (int k = 0; k < 2; ++k) {
    if ((mask & kPollEvents[k]) != 0 && !polls_[k].armed) arm(k);
  }
}

void PostgresSink::arm(int k) {
  const int fd = PQsocket(conn_);
  if (fd < 0) {
    drop("libpq has no socket");
    return;
  }
  io_uring_sqe* sqe = host_.reactor().sqe();
  io_uring_prep_poll_add(sqe, fd, kPollEvents[k]);
  io_uring_sqe_set_data64(sqe, poll_done_[k].user_data());
  polls_[k].armed = true;
  polls_[k].generation = generation_;
}

void PostgresSink::on_poll(int k, const io_uring_cqe& cqe) {
  polls_[k].armed = false;
  if (conn_ == nullptr || failed_) return;
  const bool current = polls_[k].generation == generation_;
  if (!current || cqe.res <= 0) {
    // Of a connection gone since, or refused: watch the current one if it wants this.
    if ((want_mask_ & kPollEvents[k]) != 0) arm(k);
    return;
  }
  if (state_ == State::connecting && (want_mask_ & kPollEvents[k]) == 0) {
    return;  // libpq waits for the other direction (this poll was armed before it changed its mind)
  }
  drive();
}

// ---------------------------------------------------------------------------
// Failures

void PostgresSink::close_connection() {
  want_mask_ = 0;
  if (conn_ != nullptr) {
    // Pending polls complete once the socket is shut down (their kernel
    // reference would keep it open past PQfinish's close otherwise).
    const int fd = PQsocket(conn_);
    if (fd >= 0 && (polls_[0].armed || polls_[1].armed)) ::shutdown(fd, SHUT_RDWR);
    PQfinish(conn_);
    conn_ = nullptr;
  }
  reply_deadline_ = kTimeMax;
}

void PostgresSink::drop(const std::string& why) {
  if (state_ == State::busy && flight_pending_) {
    if (last_command_ == "COMMIT") {
      // COMMIT's completion came before the connection ended (a fast shutdown
      // sends it, then FATAL): the rows are in the table.
      flight_committed();
    } else if (!tx_xid_.empty()) {
      // Whether it commits is now the server's business: the next connection asks.
      stale_xid_ = tx_xid_;
    }
  }
  close_connection();
  log_warn("sink {}: PostgreSQL: {}; reconnecting in {} ms ({} rows wait)", cfg_.name, why,
           backoff_ns_ / kNsPerMs, flight_rows_ + fill_rows_);
  metrics_.reconnects.add();
  state_ = State::backoff;
  retry_at_ = host_.reactor().now() + backoff_ns_;
  backoff_ns_ = std::min(backoff_ns_ * 2, kBackoffMaxNs);
}

void PostgresSink::fail(const std::string& why) {
  failed_ = true;
  failure_ = why;
  rows_lost_ += flight_rows_ + fill_rows_;
  flight_rows_ = fill_rows_ = 0;
  fill_->clear();
  flight_->clear();
  flight_pending_ = false;
  acknowledged_ = encoded_;
  close_connection();
  state_ = State::backoff;
  log_error("sink {}: {}; no more rows go to it, the pipeline stops and exits with status 1",
            cfg_.name, why);
  host_.sink_failed();
}

std::expected<SinkResource, std::string> open_postgres_sink(const SinkConfig&) {
  return SinkResource{};
}

std::expected<std::unique_ptr<Sink>, std::string> make_postgres_sink(SinkHost& host,
                                                                     const SinkConfig& cfg,
                                                                     SinkResource,
                                                                     SinkMetrics& metrics) {
  return std::make_unique<PostgresSink>(host, cfg, metrics);
}

uint64_t postgres_sink_fixed_bytes(const SinkConfig& cfg) {
  // Two buffers of at least two long rows, and what libpq keeps (a COPY piece, its input buffer).
  return 2 * std::max<uint64_t>(cfg.buffer_bytes, 2 * (2 * kKeyBytesMax + 4096)) +
         2 * kCopyChunkBytes;
}

std::string describe_postgres_sink(const SinkConfig& cfg) {
  const PostgresSinkOptions& o = options_of(cfg);
  static constexpr const char* kModes[] = {"append", "upsert", "replace"};
  return fmt::format("postgres table {}{}, {}{}", o.schema.empty() ? "" : o.schema + ".", o.table,
                     kModes[size_t(o.mode)], o.create ? ", created when missing" : "");
}

}  // namespace

extern const SinkKind kPostgresSinkKind = {
    .config = {.name = "postgres", .keys = kPostgresSinkKeys, .parse = parse_postgres_sink},
    .open = open_postgres_sink,
    .make = make_postgres_sink,
    .fixed_bytes = postgres_sink_fixed_bytes,
    .describe = describe_postgres_sink,
};

}  // namespace sluice
