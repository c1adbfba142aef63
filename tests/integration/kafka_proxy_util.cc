#include "tests/integration/kafka_proxy.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <deque>
#include <map>
#include <memory>
#include <optional>

namespace sluice::integration {

namespace {

constexpr int16_t kApiFetch = 1;
constexpr int16_t kApiMetadata = 3;
// Bytes read per recv: any size works, responses are reassembled by their length prefix.
constexpr size_t kReadBytes = 64 * 1024;
// Largest frame the proxy accepts: far above what a test's Fetch (max_bytes 16 MiB) can carry.
constexpr uint32_t kFrameBytesMax = 64u << 20;
// A record batch's header, from its first byte: where the fields the proxy reads are.
constexpr size_t kBatchHeaderBytes = 12;  // base_offset int64 + batch_length int32
constexpr size_t kBatchLastOffsetDeltaAt = 23;
constexpr size_t kBatchRecordsCountAt = 57;

// Big-endian reads and writes in a frame, bounds-checked: a short frame
// sets `ok` to false and reads zeros.
struct Cursor {
  std::string& s;
  size_t pos;
  bool ok = true;

  bool need(size_t n) {
    if (!ok || pos + n > s.size()) ok = false;
    return ok;
  }
  uint64_t read(size_t n) {
    if (!need(n)) return 0;
    uint64_t v = 0;
    for (size_t i = 0; i < n; ++i) v = v << 8 | uint8_t(s[pos + i]);
    pos += n;
    return v;
  }
  int16_t i16() { return int16_t(read(2)); }
  int32_t i32() { return int32_t(read(4)); }
  int64_t i64() { return int64_t(read(8)); }
  void skip(size_t n) {
    if (need(n)) pos += n;
  }
  // STRING or NULLABLE_STRING (int16 length, -1 = null).
  std::string string() {
    int16_t len = i16();
    if (len < 0 || !need(size_t(len))) return {};
    std::string out = s.substr(pos, size_t(len));
    pos += size_t(len);
    return out;
  }
  void write_i32_at(size_t at, int32_t v) {
    for (int i = 3; i >= 0; --i) s[at + size_t(3 - i)] = char(uint32_t(v) >> (8 * i) & 0xFF);
  }
};

void set_nonblocking(int fd) {
  ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
}

std::optional<sockaddr_in> parse_address(const std::string& host_port) {
  size_t colon = host_port.rfind(':');
  if (colon == std::string::npos) return std::nullopt;
  sockaddr_in a{};
  a.sin_family = AF_INET;
  if (::inet_pton(AF_INET, host_port.substr(0, colon).c_str(), &a.sin_addr) != 1) {
    return std::nullopt;
  }
  a.sin_port = htons(uint16_t(std::stoul(host_port.substr(colon + 1))));
  return a;
}

}  // namespace

struct KafkaProxy::Conn {
  int client = -1;
  int broker = -1;
  bool first = false;  // the first connection accepted: its Metadata is never held
  bool broker_eof = false;
  std::string from_client, to_broker, from_broker, to_client;
  std::map<int32_t, std::pair<int16_t, int16_t>> pending;  // correlation -> (api key, version)
  // Responses in arrival order, each with the time it may go to the client.
  std::deque<std::pair<Clock::time_point, std::string>> held;
  bool closed = false;
};

void PrintTo(KafkaProxy::Corrupt corrupt, std::ostream* os) {
  switch (corrupt) {
    case KafkaProxy::Corrupt::never:
      *os << "never";
      return;
    case KafkaProxy::Corrupt::once:
      *os << "once";
      return;
    case KafkaProxy::Corrupt::always:
      *os << "always";
      return;
  }
}

KafkaProxy::KafkaProxy() = default;

KafkaProxy::~KafkaProxy() {
  stop();
}

::testing::AssertionResult KafkaProxy::start(const std::vector<std::string>& brokers,
                                             Options options) {
  options_ = std::move(options);
  if (::pipe2(wake_fds_, O_CLOEXEC) != 0) {
    return ::testing::AssertionFailure() << "pipe2: " << std::strerror(errno);
  }
  for (const std::string& b : brokers) {
    std::optional<sockaddr_in> broker = parse_address(b);
    if (!broker) return ::testing::AssertionFailure() << "proxy: bad broker address " << b;
    broker_ports_.push_back(ntohs(broker->sin_port));
    broker_hosts_.push_back(b);
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
        ::listen(fd, 64) != 0 || ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
      if (fd >= 0) ::close(fd);
      return ::testing::AssertionFailure() << "proxy listener: " << std::strerror(errno);
    }
    listen_fds_.push_back(fd);
    proxy_ports_.push_back(ntohs(addr.sin_port));
    addresses_.push_back("127.0.0.1:" + std::to_string(proxy_ports_.back()));
  }
  thread_ = std::thread([this] { run(); });
  return ::testing::AssertionSuccess();
}

void KafkaProxy::stop() {
  if (thread_.joinable()) {
    char one = 1;
    while (::write(wake_fds_[1], &one, 1) < 0 && errno == EINTR) {
    }
    thread_.join();
  }
  for (auto& c : conns_) {
    if (c->client >= 0) ::close(c->client);
    if (c->broker >= 0) ::close(c->broker);
  }
  conns_.clear();
  for (int fd : listen_fds_) ::close(fd);
  listen_fds_.clear();
  for (int& fd : wake_fds_) {
    if (fd >= 0) ::close(fd);
    fd = -1;
  }
}

KafkaProxy::Corrupted KafkaProxy::corrupted() const {
  std::lock_guard lock(mu_);
  return corrupted_;
}

std::string KafkaProxy::error() const {
  std::lock_guard lock(mu_);
  return error_;
}

int KafkaProxy::connections() const {
  std::lock_guard lock(mu_);
  return accepted_;
}

void KafkaProxy::fail(const std::string& what) {
  std::lock_guard lock(mu_);
  if (error_.empty()) error_ = what;
}

// ---------------------------------------------------------------------------
// The I/O thread

void KafkaProxy::run() {
  std::vector<pollfd> fds;
  for (;;) {
    fds.clear();
    fds.push_back({wake_fds_[0], POLLIN, 0});
    for (int fd : listen_fds_) fds.push_back({fd, POLLIN, 0});
    int timeout_ms = -1;
    const Clock::time_point now = Clock::now();
    for (auto& c : conns_) {
      fds.push_back({c->client, short(POLLIN | (c->to_client.empty() ? 0 : POLLOUT)), 0});
      // After the broker's EOF only the client side matters (a negative fd is not polled).
      fds.push_back({c->broker_eof ? -1 : c->broker,
                     short(POLLIN | (c->to_broker.empty() ? 0 : POLLOUT)), 0});
      if (!c->held.empty()) {
        auto wait = std::chrono::ceil<std::chrono::milliseconds>(c->held.front().first - now);
        int ms = int(std::max<int64_t>(wait.count(), 0));
        timeout_ms = timeout_ms < 0 ? ms : std::min(timeout_ms, ms);
      }
    }
    if (::poll(fds.data(), fds.size(), timeout_ms) < 0 && errno != EINTR) {
      fail(std::string("poll: ") + std::strerror(errno));
      return;
    }
    if (fds[0].revents != 0) return;
    for (size_t i = 0; i < listen_fds_.size(); ++i) {
      if (fds[1 + i].revents & POLLIN) accept_on(i);
    }
    const size_t base = 1 + listen_fds_.size();
    const size_t polled = (fds.size() - base) / 2;  // connections accepted above come next round
    for (size_t i = 0; i < polled; ++i) {
      Conn& c = *conns_[i];
      const short client_ev = fds[base + 2 * i].revents;
      const short broker_ev = fds[base + 2 * i + 1].revents;
      bool alive = true;
      if (client_ev & (POLLIN | POLLHUP | POLLERR)) alive = on_client_bytes(c);
      if (alive && (broker_ev & (POLLIN | POLLHUP | POLLERR))) alive = on_broker_bytes(c);
      const Clock::time_point t = Clock::now();
      while (alive && !c.held.empty() && c.held.front().first <= t) {
        c.to_client += c.held.front().second;
        c.held.pop_front();
      }
      auto flush = [&](int fd, std::string& out) {
        while (alive && !out.empty()) {
          ssize_t n = ::send(fd, out.data(), out.size(), MSG_NOSIGNAL);
          if (n < 0 && errno == EINTR) continue;
          if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
          if (n <= 0) {
            alive = false;
            break;
          }
          out.erase(0, size_t(n));
        }
      };
      flush(c.broker, c.to_broker);
      flush(c.client, c.to_client);
      // The broker hung up: the client sees it once everything before it is delivered.
      if (c.broker_eof && c.held.empty() && c.to_client.empty()) alive = false;
      if (!alive) c.closed = true;
    }
    for (auto& c : conns_) {
      if (!c->closed) continue;
      ::close(c->client);
      ::close(c->broker);
      c->client = c->broker = -1;
    }
    std::erase_if(conns_, [](const std::unique_ptr<Conn>& c) { return c->closed; });
  }
}

void KafkaProxy::accept_on(size_t listener) {
  int client = ::accept4(listen_fds_[listener], nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
  if (client < 0) return;
  // The broker is on loopback: a blocking connect is immediate (or refused
  // when the mock has the broker down, which the client then sees as a reset).
  int broker = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  std::optional<sockaddr_in> addr = parse_address(broker_hosts_[listener]);
  if (broker < 0 || !addr ||
      ::connect(broker, reinterpret_cast<const sockaddr*>(&*addr), sizeof *addr) != 0) {
    if (broker >= 0) ::close(broker);
    ::close(client);
    return;
  }
  set_nonblocking(broker);
  int one = 1;
  ::setsockopt(client, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  ::setsockopt(broker, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  auto c = std::make_unique<Conn>();
  c->client = client;
  c->broker = broker;
  {
    std::lock_guard lock(mu_);
    c->first = accepted_++ == 0;
  }
  conns_.push_back(std::move(c));
}

bool KafkaProxy::on_client_bytes(Conn& c) {
  char buf[kReadBytes];
  ssize_t n = ::recv(c.client, buf, sizeof buf, 0);
  if (n < 0) return errno == EINTR || errno == EAGAIN;
  if (n == 0) return false;  // the client hung up: so does the proxy, both ways
  c.from_client.append(buf, size_t(n));
  // Requests go on unchanged; the proxy notes which API and version each one is.
  while (c.from_client.size() >= 4) {
    Cursor r{c.from_client, 0};
    const uint32_t size = uint32_t(r.i32());
    if (size > kFrameBytesMax) {
      fail("request frame of " + std::to_string(size) + " bytes");
      return false;
    }
    if (c.from_client.size() < 4 + size_t(size)) break;
    const int16_t api_key = r.i16();
    const int16_t version = r.i16();
    const int32_t correlation = r.i32();
    c.pending[correlation] = {api_key, version};
    c.to_broker.append(c.from_client, 0, 4 + size_t(size));
    c.from_client.erase(0, 4 + size_t(size));
  }
  return true;
}

bool KafkaProxy::on_broker_bytes(Conn& c) {
  char buf[kReadBytes];
  ssize_t n = ::recv(c.broker, buf, sizeof buf, 0);
  if (n < 0) return errno == EINTR || errno == EAGAIN;
  if (n == 0) {
    c.broker_eof = true;
    return true;
  }
  c.from_broker.append(buf, size_t(n));
  while (c.from_broker.size() >= 8) {
    Cursor r{c.from_broker, 0};
    const uint32_t size = uint32_t(r.i32());
    if (size > kFrameBytesMax || size < 4) {
      fail("response frame of " + std::to_string(size) + " bytes");
      return false;
    }
    if (c.from_broker.size() < 4 + size_t(size)) break;
    const int32_t correlation = r.i32();
    std::string frame = c.from_broker.substr(0, 4 + size_t(size));
    c.from_broker.erase(0, 4 + size_t(size));
    auto it = c.pending.find(correlation);
    if (it == c.pending.end()) {
      fail("response to an unknown correlation id " + std::to_string(correlation));
      return false;
    }
    const auto [api_key, version] = it->second;
    c.pending.erase(it);
    Clock::time_point release = Clock::now();
    if (api_key == kApiMetadata) {
      rewrite_metadata(frame, version);
      if (!c.first) release += options_.metadata_delay;
    } else if (api_key == kApiFetch && options_.corrupt != Corrupt::never) {
      corrupt_fetch(frame, version);
    }
    c.held.emplace_back(release, std::move(frame));
  }
  return true;
}

void KafkaProxy::rewrite_metadata(std::string& frame, int16_t version) {
  if (version < 1 || version > 8) {
    fail("Metadata v" + std::to_string(version) + " is not handled by the proxy");
    return;
  }
  Cursor r{frame, 8};           // after the size and the correlation id
  if (version >= 3) r.skip(4);  // throttle_time_ms
  const int32_t brokers = r.i32();
  for (int32_t b = 0; b < brokers && r.ok; ++b) {
    r.skip(4);   // node_id
    r.string();  // host
    const size_t port_at = r.pos;
    const int32_t port = r.i32();
    r.string();  // rack (v1+)
    for (size_t i = 0; r.ok && i < broker_ports_.size(); ++i) {
      if (port == broker_ports_[i]) r.write_i32_at(port_at, proxy_ports_[i]);
    }
  }
  if (!r.ok) fail("malformed Metadata response");
}

void KafkaProxy::corrupt_fetch(std::string& frame, int16_t version) {
  if (version < 4 || version > 11) {
    fail("Fetch v" + std::to_string(version) + " is not handled by the proxy");
    return;
  }
  Cursor r{frame, 8};
  r.skip(4);                        // throttle_time_ms
  if (version >= 7) r.skip(2 + 4);  // error_code, session_id
  const int32_t topics = r.i32();
  for (int32_t t = 0; t < topics && r.ok; ++t) {
    const std::string topic = r.string();
    const int32_t partitions = r.i32();
    for (int32_t p = 0; p < partitions && r.ok; ++p) {
      const int32_t partition = r.i32();
      r.skip(2 + 8 + 8);            // error_code, high_watermark, last_stable_offset
      if (version >= 5) r.skip(8);  // log_start_offset
      const int32_t aborted = r.i32();
      if (aborted > 0) r.skip(size_t(aborted) * 16);
      if (version >= 11) r.skip(4);  // preferred_read_replica
      const int32_t records_bytes = r.i32();
      if (records_bytes <= 0 || !r.need(size_t(records_bytes))) continue;
      const size_t records_at = r.pos;
      r.skip(size_t(records_bytes));
      if (topic != options_.topic || partition != options_.partition) continue;
      // The batches of this partition; a cut-off batch at the end is left alone.
      for (size_t at = records_at; at + kBatchRecordsCountAt + 4 <= records_at + records_bytes;) {
        Cursor b{frame, at};
        const int64_t base = b.i64();
        const int32_t length = b.i32();
        const size_t end = at + kBatchHeaderBytes + size_t(std::max(length, 0));
        if (length <= 0 || end > records_at + size_t(records_bytes)) break;
        auto seen = std::find(seen_bases_.begin(), seen_bases_.end(), base);
        const size_t ordinal = size_t(seen - seen_bases_.begin());
        if (seen == seen_bases_.end()) seen_bases_.push_back(base);
        if (ordinal == size_t(options_.batch_ordinal)) {
          std::lock_guard lock(mu_);
          if (options_.corrupt == Corrupt::always || corrupted_.times == 0) {
            Cursor h{frame, at + kBatchLastOffsetDeltaAt};
            const int32_t last_delta = h.i32();
            h.pos = at + kBatchRecordsCountAt;
            corrupted_.records = h.i32();
            corrupted_.base_offset = base;
            corrupted_.last_offset = base + last_delta;
            ++corrupted_.times;
            // The batch's last byte: the CRC covers everything after its own
            // field (from byte 21), so the batch now fails its CRC check.
            frame[end - 1] = char(frame[end - 1] ^ 0xFF);
          }
        }
        at = end;
      }
    }
  }
  if (!r.ok) fail("malformed Fetch response");
}

}  // namespace sluice::integration
