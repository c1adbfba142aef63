// The Redis sink: each result row becomes `HSET <key> <field> <value> ...`
// (absolute values, so writing a row again is harmless) and, with `ttl`,
// `PEXPIRE <key> <ms>`. Sluice speaks RESP itself on the shard's io_uring.
//
// Rows are encoded as commands into a fill buffer; a batch (the whole fill
// buffer) is sent in one pipelined write and its replies are read and
// checked, one batch at a time. A batch counts as written when every reply
// is in and none is an error.
//
// Failures: a connection that cannot be made, is reset or closed makes the
// sink reconnect with a capped back-off and send the unacknowledged batch
// again (idempotent); transient error replies (LOADING, BUSY, READONLY, OOM,
// TRYAGAIN, MASTERDOWN) send it again after a back-off too. Anything else
// (WRONGTYPE, NOAUTH, WRONGPASS, NOPERM, ERR on a command Sluice built, a
// reply that is not RESP) is logged with the key and fails the sink: the
// pipeline stops with exit status 1 instead of dropping rows. While Redis is
// slow or away, rows wait in the buffers, bounded by pending_bytes_max, and
// then firing pauses (back-pressure).
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <any>
#include <cerrno>
#include <cstring>
#include <memory>
#include <vector>

#include <fmt/format.h>

#include "core/assert.h"
#include "core/byte_buffer.h"
#include "core/log.h"
#include "core/timestamp.h"
#include "io/redis/resp.h"
#include "io/resolver.h"
#include "io/sink.h"
#include "io/sinks/row_template.h"
#include "operators/event.h"
#include "operators/hyperloglog.h"
#include "operators/json_text.h"

namespace sluice {

namespace {

constexpr int64_t kBackoffMinNs = 100 * kNsPerMs;
constexpr int64_t kBackoffMaxNs = 5 * kNsPerS;
constexpr size_t kReplyBufferBytes = 64 * 1024;
constexpr size_t kPendingMax = 4096;
constexpr size_t kValueBytesMax = kRowValueBytesMax;

// A `sketches` entry: an approx_count_distinct aggregate written as a Redis
// HyperLogLog under its own key template.
struct SketchTarget {
  uint32_t aggregate = 0;
  RowTemplate key;
};

struct RedisSinkOptions {
  bool unix_socket = false;
  std::string path;  // unix:
  std::string host;
  uint16_t port = 6379;
  RowTemplate key;
  std::vector<std::pair<std::string, RowRef>> fields;
  std::vector<SketchTarget> sketches;
  int64_t ttl_ns = 0;
  int64_t timeout_ns = 30 * kNsPerS;  // connect, handshake or a batch answered within this
  std::string user;
  std::string password;
  int64_t db = 0;
};

const RedisSinkOptions& options_of(const SinkConfig& cfg) { return std::any_cast<const RedisSinkOptions&>(cfg.options); }

// ---------------------------------------------------------------------------
// Config

constexpr std::string_view kRedisSinkKeys[] = {"address", "key",  "fields",   "sketches", "ttl",
                                                "timeout", "user", "password", "db"};
// A result row carries each sketch (12 KiB at precision 14): a few fit the
// 64 KiB chunks rows travel in between shards.
constexpr size_t kSketchesMax = 4;

void parse_redis_sink(TableReader& r, SinkConfig& sink, ConfigContext& ctx) {
  RedisSinkOptions o;
  std::string address = "127.0.0.1:6379";
  if (r.string("address", address)) {
    if (address.starts_with("unix:")) {
      o.unix_socket = true;
      o.path = address.substr(5);
      if (o.path.empty() || o.path.size() >= sizeof(sockaddr_un{}.sun_path)) {
        r.error("address", "a unix socket path must be 1 to 107 bytes");
      }
    } else {
      std::string_view a = address;
      size_t colon = a.rfind(':');
      std::string_view host = colon == std::string_view::npos ? a : a.substr(0, colon);
      if (host.starts_with('[') && host.ends_with(']')) host = host.substr(1, host.size() - 2);
      o.host = std::string(host);
      uint32_t port = 0;
      const std::string_view digits = colon == std::string_view::npos ? "" : a.substr(colon + 1);
      bool ok = !digits.empty() && digits.size() <= 5 && !o.host.empty();
      for (char c : digits) {
        ok = ok && c >= '0' && c <= '9';
        port = port * 10 + uint32_t(c - '0');
      }
      if (!ok || port == 0 || port > 65535) {
        r.error("address", "expected \"host:port\" (port 1..65535) or \"unix:/path/to/redis.sock\"");
      }
      o.port = uint16_t(port);
    }
  }
  std::string key;
  if (r.string("key", key, Need::required)) {
    auto parts = parse_row_template(key, ctx);
    if (!parts) {
      r.error("key", parts.error());
    } else {
      o.key = std::move(*parts);
    }
  }
  if (const toml::node* fields = r.find("fields", Need::required)) {
    const toml::table* t = fields->as_table();
    if (t == nullptr || t->empty()) {
      r.error("fields", "expected a table of hash field = \"aggregate, key field, window_start or window_end\"");
    } else {
      for (const auto& [name, value] : *t) {
        const auto* text = value.as_string();
        if (text == nullptr) {
          r.error_at(value, "fields", fmt::format("{}: expected the name of what to write, as a string", name.str()));
          continue;
        }
        auto ref = resolve_row_ref(text->get(), ctx);
        if (!ref) {
          r.error_at(value, "fields", fmt::format("{}: {}", name.str(), ref.error()));
          continue;
        }
        o.fields.emplace_back(std::string(name.str()), *ref);
      }
    }
  }
  if (const toml::node* sketches = r.find("sketches")) {
    const toml::table* t = sketches->as_table();
    if (t == nullptr || t->empty()) {
      r.error("sketches", "expected a table of aggregate = \"key template\"");
    } else if (t->size() > kSketchesMax) {
      r.error("sketches", fmt::format("at most {} sketches per sink", kSketchesMax));
    } else {
      for (const auto& [name, value] : *t) {
        const auto* text = value.as_string();
        auto ref = resolve_row_ref(name.str(), ctx);
        if (text == nullptr) {
          r.error_at(value, "sketches", fmt::format("{}: expected a key template, as a string", name.str()));
        } else if (!ref || ref->kind != RowRef::Kind::aggregate ||
                   (*ctx.aggregates)[ref->index].fn.name != "approx_count_distinct") {
          r.error_at(value, "sketches", fmt::format("{}: not an approx_count_distinct aggregate", name.str()));
        } else if ((*ctx.aggregates)[ref->index].params.precision != hll::kRedisPrecision) {
          r.error_at(value, "sketches",
                     fmt::format("{}: Redis keeps HyperLogLogs of precision {} only; this aggregate has precision {}",
                                 name.str(), hll::kRedisPrecision, (*ctx.aggregates)[ref->index].params.precision));
        } else if (auto parts = parse_row_template(text->get(), ctx); !parts) {
          r.error_at(value, "sketches", fmt::format("{}: {}", name.str(), parts.error()));
        } else {
          o.sketches.push_back(SketchTarget{ref->index, std::move(*parts)});
          sink.states.push_back(ref->index);
        }
      }
    }
  }
  r.duration("ttl", o.ttl_ns, Zero::rejected);
  r.duration("timeout", o.timeout_ns, Zero::rejected);
  r.string("user", o.user);
  r.string("password", o.password);
  if (!o.user.empty() && o.password.empty() && r.find("user") != nullptr) {
    r.error("user", "a user needs its password");
  }
  r.integer("db", o.db, 0, 65535);
  sink.options = std::move(o);
}

// ---------------------------------------------------------------------------
// The sink

class RedisSink final : public Sink {
 public:
  RedisSink(SinkHost& host, const SinkConfig& cfg, SinkMetrics& metrics)
      : host_(host),
        cfg_(cfg),
        o_(options_of(cfg)),
        metrics_(metrics),
        connect_done_(Completion::to<&RedisSink::on_connect_done>(this)),
        send_done_(Completion::to<&RedisSink::on_send_done>(this)),
        recv_done_(Completion::to<&RedisSink::on_recv_done>(this)),
        in_(kReplyBufferBytes) {
    // The longest row: every reference at its longest, every literal, RESP framing.
    auto longest = [](const RowTemplate& t) { return template_bytes_max(t); };
    size_t key_max = longest(o_.key);
    row_max_ = resp::kHeaderBytesMax + resp::bulk_bytes_max(4) + resp::bulk_bytes_max(key_max);
    for (const auto& [name, ref] : o_.fields) {
      row_max_ += resp::bulk_bytes_max(name.size()) + resp::bulk_bytes_max(kValueBytesMax);
    }
    const size_t expire_max = resp::kHeaderBytesMax + resp::bulk_bytes_max(7) + resp::bulk_bytes_max(key_max) +
                              resp::bulk_bytes_max(kNumberBytesMax);
    if (o_.ttl_ns > 0) row_max_ += expire_max;
    // Each sketch: SET <key> <Redis's dense string> (and its PEXPIRE).
    const std::vector<uint32_t> exported = exported_states(host.config());
    for (const SketchTarget& s : o_.sketches) {
      const size_t k = longest(s.key);
      key_max = std::max(key_max, k);
      row_max_ += resp::kHeaderBytesMax + resp::bulk_bytes_max(3) + resp::bulk_bytes_max(k) +
                  resp::bulk_bytes_max(hll::kRedisDenseBytes);
      if (o_.ttl_ns > 0) row_max_ += expire_max + resp::bulk_bytes_max(k);
      sketch_state_.push_back(
          uint32_t(std::find(exported.begin(), exported.end(), s.aggregate) - exported.begin()));
    }
    commands_per_row_ = uint32_t((1 + o_.sketches.size()) * (o_.ttl_ns > 0 ? 2 : 1));
    const size_t bytes = std::max<size_t>(cfg.buffer_bytes, row_max_ * 2);
    fill_ = std::make_unique<ByteBuffer>(bytes);
    flight_ = std::make_unique<ByteBuffer>(bytes);
    key_text_ = std::make_unique<char[]>(key_max + 1);
    if (!o_.sketches.empty()) sketch_text_ = std::make_unique<char[]>(hll::kRedisDenseBytes);
  }
  ~RedisSink() override {
    if (fd_ >= 0) ::close(fd_);
  }

  size_t take(const SinkWindow& w, size_t from, int64_t now) override;
  void window_taken(const SinkWindow& w) override {
    // Beyond kPendingMax windows waiting (Redis far behind) further ones are not timed.
    if (w.count > 0 && windows_.size() < kPendingMax) windows_.push_back(Pending{encoded_, w.fire_ns, w.end});
  }
  bool flush(int64_t now, bool stuck, bool final) override;
  int64_t next_deadline() const override;
  uint64_t unwritten_bytes() const override { return encoded_ - acknowledged_; }
  bool idle() const override { return failed_ || (fill_->empty() && flight_->empty() && ops_ == 0); }
  bool failed() const override { return failed_; }
  uint64_t rows_written() const override { return rows_written_; }
  std::string failure() const override {
    return fmt::format("sink {} failed ({}): {} rows written, {} rows not written", cfg_.name, failure_, rows_written_,
                       rows_lost_);
  }
  std::string describe_pending() const override {
    if (failed_ || unwritten_bytes() == 0) return {};
    return fmt::format("sink {}: {} bytes of commands not yet acknowledged by Redis ({})", cfg_.name,
                       unwritten_bytes(), state_name());
  }
  void refresh_gauges() override { metrics_.buffer_bytes.set(int64_t(unwritten_bytes())); }

  // Rows acknowledged (Redis has no file position; a replay re-sends rows).
  uint64_t position() const override { return rows_written_; }
  std::expected<void, std::string> pre_commit(uint64_t) override { return {}; }
  std::expected<void, std::string> recover(uint64_t) override { return {}; }

 private:
  enum class State : uint8_t { backoff, resolving, connecting, handshake, ready, closing };
  struct Pending {
    uint64_t end;  // encoded bytes up to this window's last row
    int64_t fire_ns;
    int64_t window_end_ns;
  };

  const char* state_name() const {
    switch (state_) {
      case State::backoff: return "reconnecting";
      case State::resolving: return "resolving";
      case State::connecting: return "connecting";
      case State::handshake: return "authenticating";
      case State::ready: return "connected";
      case State::closing: return "closing";
    }
    return "";
  }
  std::string peer() const { return o_.unix_socket ? "unix:" + o_.path : fmt::format("{}:{}", o_.host, o_.port); }

  size_t encode_row(const ResultRowView& row, int64_t size_ns, char* out);
  void connect();
  void start_batch(ByteBuffer& buffer, uint32_t replies);
  void send();
  void arm_recv();
  void on_connect_done(const io_uring_cqe& cqe);
  void on_send_done(const io_uring_cqe& cqe);
  void on_recv_done(const io_uring_cqe& cqe);
  bool op_done();
  void drop(const std::string& why);
  void batch_done();
  void fail(const std::string& why);
  std::string key_of_command(uint32_t index) const;

  SinkHost& host_;
  const SinkConfig& cfg_;
  const RedisSinkOptions& o_;
  SinkMetrics& metrics_;
  Completion connect_done_;
  Completion send_done_;
  Completion recv_done_;
  Resolver resolver_;
  sockaddr_storage addr_{};
  socklen_t addr_len_ = 0;

  State state_ = State::backoff;
  int fd_ = -1;
  int ops_ = 0;  // io_uring operations in flight on fd_
  int64_t retry_at_ = 0;
  int64_t backoff_ns_ = kBackoffMinNs;
  bool connected_once_ = false;

  size_t row_max_ = 0;
  uint32_t commands_per_row_ = 1;
  std::vector<uint32_t> sketch_state_;  // per sketch: its exported state in a row
  RowRenderer renderer_;
  std::unique_ptr<char[]> key_text_;
  std::unique_ptr<char[]> sketch_text_;  // a sketch as Redis's string, before its bulk header
  std::unique_ptr<ByteBuffer> fill_;    // commands being encoded
  std::unique_ptr<ByteBuffer> flight_;  // the batch sent and awaiting its replies
  std::string handshake_;               // AUTH / SELECT of a new connection
  uint32_t fill_rows_ = 0, fill_commands_ = 0;
  uint32_t flight_rows_ = 0, flight_commands_ = 0;
  int64_t dirty_since_ = kTimeMax;

  // The batch on the wire: its bytes, how much is sent, the replies it needs.
  std::string_view out_;
  size_t sent_ = 0;
  uint32_t replies_expected_ = 0;
  uint32_t replies_ = 0;
  bool in_handshake_ = false;
  bool retry_batch_ = false;  // a transient error reply: send it again
  std::string transient_;     // the last one, for the log
  int64_t resend_at_ = kTimeMax;
  int64_t batch_started_ns_ = 0;
  int64_t reply_deadline_ = kTimeMax;  // connect, handshake or batch must be answered by then
  ByteBuffer in_;

  uint64_t encoded_ = 0;       // command bytes encoded so far
  uint64_t acknowledged_ = 0;  // of which acknowledged
  std::vector<Pending> windows_;
  uint64_t rows_written_ = 0;
  uint64_t rows_lost_ = 0;
  uint64_t reconnects_ = 0;
  uint64_t retries_ = 0;
  bool failed_ = false;
  std::string failure_;
};

size_t RedisSink::encode_row(const ResultRowView& row, int64_t size_ns, char* out) {
  renderer_.begin(row, size_ns);
  char value[kNumberBytesMax];
  char* p = out;
  auto expire = [&](std::string_view key) {
    if (o_.ttl_ns <= 0) return;
    p += resp::write_array_header(3, p);
    p += resp::write_bulk("PEXPIRE", p);
    p += resp::write_bulk(key, p);
    p += resp::write_bulk(std::string_view(value, write_int64((o_.ttl_ns + kNsPerMs - 1) / kNsPerMs, value)), p);
  };
  std::string_view key(key_text_.get(), renderer_.render(o_.key, key_text_.get()));
  p += resp::write_array_header(2 + 2 * o_.fields.size(), p);
  p += resp::write_bulk("HSET", p);
  p += resp::write_bulk(key, p);
  for (const auto& [name, ref] : o_.fields) {
    p += resp::write_bulk(name, p);
    p += resp::write_bulk(renderer_.render(ref), p);
  }
  expire(key);
  for (size_t i = 0; i < o_.sketches.size(); ++i) {
    // SET <key> <the sketch as Redis's dense HyperLogLog string>, written in place.
    key = std::string_view(key_text_.get(), renderer_.render(o_.sketches[i].key, key_text_.get()));
    p += resp::write_array_header(3, p);
    p += resp::write_bulk("SET", p);
    p += resp::write_bulk(key, p);
    const size_t n = hll::write_redis(row.state(sketch_state_[i]), sketch_text_.get());
    SLUICE_ASSERT(n > 0);  // the config allows precision-14 approx_count_distinct only
    p += resp::write_bulk(std::string_view(sketch_text_.get(), n), p);
    expire(key);
  }
  return size_t(p - out);
}

size_t RedisSink::take(const SinkWindow& w, size_t from, int64_t now) {
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
    fill_commands_ += commands_per_row_;
  }
  if (was_empty && !fill_->empty()) dirty_since_ = now;
  return i - from;
}

int64_t RedisSink::next_deadline() const {
  if (failed_) return kTimeMax;
  int64_t t = kTimeMax;
  if (state_ == State::backoff && (!fill_->empty() || !flight_->empty())) t = retry_at_;
  if (state_ == State::resolving) t = host_.reactor().now() + Resolver::kPollNs;
  if (resend_at_ != kTimeMax) t = std::min(t, resend_at_);
  // A flush falls due only where flush() can start one (connected, no resend waiting).
  if (state_ == State::ready && resend_at_ == kTimeMax && !fill_->empty() && flight_->empty() &&
      dirty_since_ != kTimeMax) {
    t = std::min(t, dirty_since_ + cfg_.flush_interval_ns);
  }
  t = std::min(t, reply_deadline_);
  return t;
}

bool RedisSink::flush(int64_t now, bool stuck, bool final) {
  if (failed_) return false;
  if (now >= reply_deadline_) {
    // A connection half open, a host gone silent, a Redis paused for long:
    // start over (what was not acknowledged is sent again).
    reply_deadline_ = kTimeMax;
    drop(fmt::format("no answer within {} ms", o_.timeout_ns / kNsPerMs));
    return true;
  }
  if (state_ == State::resolving && resolver_.poll() != Resolver::State::resolving) {
    connect();
    return true;
  }
  if (state_ == State::backoff && now >= retry_at_ && (!fill_->empty() || !flight_->empty())) {
    connect();
    return true;
  }
  if (state_ != State::ready) return false;
  if (resend_at_ != kTimeMax) {
    if (now < resend_at_) return false;
    resend_at_ = kTimeMax;
    ++retries_;
    metrics_.retries.add();
    start_batch(*flight_, flight_commands_);
    return true;
  }
  if (!flight_->empty() || fill_->empty()) return false;
  const bool due = now - dirty_since_ >= cfg_.flush_interval_ns || fill_->size() >= fill_->capacity() / 2 || stuck ||
                   final;
  if (!due) return false;
  std::swap(fill_, flight_);
  flight_rows_ = fill_rows_;
  flight_commands_ = fill_commands_;
  fill_rows_ = fill_commands_ = 0;
  dirty_since_ = kTimeMax;
  start_batch(*flight_, flight_commands_);
  return true;
}

void RedisSink::connect() {
  if (!o_.unix_socket && state_ != State::resolving) {
    if (resolver_.start(o_.host, o_.port) == Resolver::State::resolving) {
      state_ = State::resolving;
      return;
    }
  }
  if (o_.unix_socket) {
    auto* un = reinterpret_cast<sockaddr_un*>(&addr_);
    un->sun_family = AF_UNIX;
    std::memcpy(un->sun_path, o_.path.c_str(), o_.path.size() + 1);
    addr_len_ = socklen_t(offsetof(sockaddr_un, sun_path) + o_.path.size() + 1);
  } else {
    if (resolver_.state() != Resolver::State::done) {
      drop(fmt::format("cannot resolve {}: {}", o_.host, resolver_.error()));
      return;
    }
    addr_ = resolver_.address();
    addr_len_ = resolver_.address_length();
  }
  fd_ = ::socket(addr_.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd_ < 0) {
    drop(fmt::format("socket: {}", std::strerror(errno)));
    return;
  }
  if (!o_.unix_socket) {
    int one = 1;
    setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  }
  state_ = State::connecting;
  reply_deadline_ = host_.reactor().now() + o_.timeout_ns;
  io_uring_sqe* sqe = host_.reactor().sqe();
  io_uring_prep_connect(sqe, fd_, reinterpret_cast<const sockaddr*>(&addr_), addr_len_);
  io_uring_sqe_set_data64(sqe, connect_done_.user_data());
  ++ops_;
}

bool RedisSink::op_done() {
  --ops_;
  if (state_ != State::closing) return true;
  if (ops_ == 0) {
    ::close(fd_);
    fd_ = -1;
    state_ = State::backoff;
  }
  return false;
}

void RedisSink::on_connect_done(const io_uring_cqe& cqe) {
  if (!op_done()) return;
  if (cqe.res < 0) {
    drop(std::strerror(-cqe.res));
    return;
  }
  if (connected_once_) {
    log_info("sink {}: reconnected to Redis at {}", cfg_.name, peer());
  }
  connected_once_ = true;
  handshake_.clear();
  uint32_t commands = 0;
  auto command = [&](std::initializer_list<std::string_view> args) {
    size_t bytes = resp::kHeaderBytesMax;
    for (std::string_view a : args) bytes += resp::bulk_bytes_max(a.size());
    const size_t at = handshake_.size();
    handshake_.resize(at + bytes);
    char* p = handshake_.data() + at;
    p += resp::write_array_header(args.size(), p);
    for (std::string_view a : args) p += resp::write_bulk(a, p);
    handshake_.resize(size_t(p - handshake_.data()));
    ++commands;
  };
  if (!o_.password.empty()) {
    if (o_.user.empty()) {
      command({"AUTH", o_.password});
    } else {
      command({"AUTH", o_.user, o_.password});
    }
  }
  if (o_.db != 0) command({"SELECT", std::to_string(o_.db)});
  if (commands == 0) {
    reply_deadline_ = kTimeMax;
    state_ = State::ready;
    backoff_ns_ = kBackoffMinNs;
    if (!flight_->empty()) start_batch(*flight_, flight_commands_);  // not acknowledged before: again
    return;
  }
  state_ = State::handshake;
  reply_deadline_ = host_.reactor().now() + o_.timeout_ns;
  in_handshake_ = true;
  out_ = handshake_;
  sent_ = 0;
  replies_expected_ = commands;
  replies_ = 0;
  in_.clear();
  send();
  arm_recv();
}

void RedisSink::start_batch(ByteBuffer& buffer, uint32_t replies) {
  in_handshake_ = false;
  metrics_.writes.add();
  batch_started_ns_ = host_.reactor().now();
  reply_deadline_ = batch_started_ns_ + o_.timeout_ns;
  out_ = buffer.view();
  sent_ = 0;
  replies_expected_ = replies;
  replies_ = 0;
  retry_batch_ = false;
  in_.clear();
  send();
  arm_recv();
}

void RedisSink::send() {
  io_uring_sqe* sqe = host_.reactor().sqe();
  io_uring_prep_send(sqe, fd_, out_.data() + sent_, out_.size() - sent_, MSG_NOSIGNAL);
  io_uring_sqe_set_data64(sqe, send_done_.user_data());
  ++ops_;
}

void RedisSink::arm_recv() {
  io_uring_sqe* sqe = host_.reactor().sqe();
  io_uring_prep_recv(sqe, fd_, in_.tail(), in_.room(), 0);
  io_uring_sqe_set_data64(sqe, recv_done_.user_data());
  ++ops_;
}

void RedisSink::on_send_done(const io_uring_cqe& cqe) {
  if (!op_done()) return;
  if (cqe.res < 0) {
    drop(fmt::format("send: {}", std::strerror(-cqe.res)));
    return;
  }
  sent_ += size_t(cqe.res);
  if (!in_handshake_) metrics_.bytes_out.add(uint64_t(cqe.res));
  if (sent_ < out_.size()) send();
}

void RedisSink::on_recv_done(const io_uring_cqe& cqe) {
  if (!op_done()) return;
  if (cqe.res <= 0) {
    drop(cqe.res == 0 ? std::string("connection closed by Redis") : fmt::format("recv: {}", std::strerror(-cqe.res)));
    return;
  }
  in_.commit(size_t(cqe.res));
  resp::Reply reply;
  size_t consumed = 0;
  size_t read = 0;  // bytes of in_ taken by whole replies (consumed once, after the loop)
  for (;;) {
    if (replies_ == replies_expected_) break;
    const resp::ParseStatus s = resp::parse_reply(in_.view().substr(read), reply, consumed);
    if (s == resp::ParseStatus::incomplete) break;
    if (s == resp::ParseStatus::malformed) {
      fail(fmt::format("Redis at {} sent a reply that is not RESP", peer()));
      return;
    }
    if (reply.type == resp::Reply::Type::error) {
      metrics_.errors.add();
      const std::string text(reply.text.substr(0, 300));
      if (reply.text.starts_with("ERR max number of clients reached")) {
        // Said at accept time, then the connection is closed: a reason to retry, not a reply.
        drop(text);
        return;
      }
      if (in_handshake_) {
        fail(fmt::format("Redis at {} refused {}: {}", peer(), replies_ == 0 && !o_.password.empty() ? "AUTH" : "SELECT",
                         text));
        return;
      }
      if (!resp::transient_error(reply.text)) {
        fail(fmt::format("Redis at {} refused the command for key \"{}\": {}", peer(), key_of_command(replies_), text));
        return;
      }
      retry_batch_ = true;
      transient_ = text;
    }
    read += consumed;
    ++replies_;
  }
  in_.consume(read);
  if (replies_ < replies_expected_) {
    if (in_.room() == 0) {
      fail(fmt::format("Redis at {} sent a reply longer than {} bytes", peer(), in_.capacity()));
      return;
    }
    arm_recv();
    return;
  }
  if (!in_.empty()) {
    fail(fmt::format("Redis at {} sent {} bytes that answer no command", peer(), in_.size()));
    return;
  }
  reply_deadline_ = kTimeMax;
  if (in_handshake_) {
    in_handshake_ = false;
    state_ = State::ready;
    backoff_ns_ = kBackoffMinNs;
    if (!flight_->empty()) start_batch(*flight_, flight_commands_);
    return;
  }
  batch_done();
}

void RedisSink::batch_done() {
  if (retry_batch_) {
    log_warn("sink {}: Redis at {} answered {}; sending the batch again in {} ms", cfg_.name, peer(), transient_,
             backoff_ns_ / kNsPerMs);
    resend_at_ = host_.reactor().now() + backoff_ns_;
    backoff_ns_ = std::min(backoff_ns_ * 2, kBackoffMaxNs);
    return;
  }
  backoff_ns_ = kBackoffMinNs;
  metrics_.write_latency.record_interval_ns(batch_started_ns_, host_.reactor().now());
  acknowledged_ += flight_->size();
  rows_written_ += flight_rows_;
  metrics_.rows_out.add(flight_rows_);
  flight_->clear();
  flight_rows_ = flight_commands_ = 0;
  host_.rows_written();
  size_t done = 0;
  while (done < windows_.size() && windows_[done].end <= acknowledged_) {
    host_.window_written(windows_[done].fire_ns, windows_[done].window_end_ns);
    ++done;
  }
  windows_.erase(windows_.begin(), windows_.begin() + long(done));
}

void RedisSink::drop(const std::string& why) {
  reply_deadline_ = kTimeMax;
  if (state_ == State::closing) return;
  log_warn("sink {}: Redis at {}: {}; reconnecting in {} ms ({} rows wait)", cfg_.name, peer(), why,
           backoff_ns_ / kNsPerMs, flight_rows_ + fill_rows_);
  ++reconnects_;
  metrics_.reconnects.add();
  retry_at_ = host_.reactor().now() + backoff_ns_;
  backoff_ns_ = std::min(backoff_ns_ * 2, kBackoffMaxNs);
  resend_at_ = kTimeMax;
  if (fd_ < 0) {
    state_ = State::backoff;
    return;
  }
  state_ = State::closing;
  ::shutdown(fd_, SHUT_RDWR);  // completes what is pending on it
  if (ops_ == 0) {
    ::close(fd_);
    fd_ = -1;
    state_ = State::backoff;
  }
}

void RedisSink::fail(const std::string& why) {
  failed_ = true;
  failure_ = why;
  rows_lost_ += flight_rows_ + fill_rows_;
  flight_rows_ = fill_rows_ = 0;
  fill_->clear();
  flight_->clear();
  acknowledged_ = encoded_;
  if (fd_ >= 0) {
    state_ = State::closing;
    ::shutdown(fd_, SHUT_RDWR);
    if (ops_ == 0) {
      ::close(fd_);
      fd_ = -1;
    }
  }
  log_error("sink {}: {}; no more rows go to it, the pipeline stops and exits with status 1", cfg_.name, why);
  host_.sink_failed();
}

// The key of command `index` of the batch in flight (for the log).
std::string RedisSink::key_of_command(uint32_t index) const {
  std::string_view rest = out_;
  for (uint32_t i = 0;; ++i) {
    resp::Reply header;
    size_t consumed = 0;
    // A command is an array of bulks, which the reply reader can walk too.
    if (resp::parse_reply(rest, header, consumed) != resp::ParseStatus::complete) return "?";
    if (i == index) {
      // "*n\r\n$4\r\nHSET\r\n$len\r\nkey\r\n": the second bulk.
      std::string_view cmd = rest.substr(0, consumed);
      for (int skip = 0; skip < 2; ++skip) cmd = cmd.substr(cmd.find('\n') + 1);
      cmd = cmd.substr(cmd.find('\n') + 1);
      const size_t len = std::strtoul(cmd.data() + 1, nullptr, 10);
      cmd = cmd.substr(cmd.find('\n') + 1);
      return std::string(cmd.substr(0, std::min<size_t>(len, 200)));
    }
    rest = rest.substr(consumed);
  }
}

std::expected<SinkResource, std::string> open_redis_sink(const SinkConfig&) { return SinkResource{}; }

std::expected<std::unique_ptr<Sink>, std::string> make_redis_sink(SinkHost& host, const SinkConfig& cfg, SinkResource,
                                                                  SinkMetrics& metrics) {
  return std::make_unique<RedisSink>(host, cfg, metrics);
}

uint64_t redis_sink_fixed_bytes(const SinkConfig& cfg) {
  // Each buffer holds at least two of the longest rows; a row with sketches is ~12 KiB each.
  const uint64_t row = 4096 + options_of(cfg).sketches.size() * (hll::kRedisDenseBytes + 2048);
  return 2 * std::max<uint64_t>(cfg.buffer_bytes, 2 * row) + kReplyBufferBytes + hll::kRedisDenseBytes;
}

std::string describe_redis_sink(const SinkConfig& cfg) {
  const RedisSinkOptions& o = options_of(cfg);
  return "redis " + (o.unix_socket ? "unix:" + o.path : fmt::format("{}:{}", o.host, o.port));
}

}  // namespace

extern const SinkKind kRedisSinkKind = {
    .config = {.name = "redis", .keys = kRedisSinkKeys, .parse = parse_redis_sink},
    .open = open_redis_sink,
    .make = make_redis_sink,
    .fixed_bytes = redis_sink_fixed_bytes,
    .describe = describe_redis_sink,
};

}  // namespace sluice
