// Sockets: listeners and peer addresses. Start-up and per-connection code,
// not per-event.
#pragma once

#include <sys/socket.h>

#include <cstdint>
#include <expected>
#include <string>

namespace sluice {

struct Listener {
  int fd = -1;
  std::string address;  // "host:port" actually bound (port resolved when 0 was asked)
};

// Binds and listens (non-blocking, SO_REUSEADDR). host: IPv4/IPv6 literal or "localhost".
std::expected<Listener, std::string> open_listener(const std::string& host, uint16_t port,
                                                   int backlog);

// "1.2.3.4:5678" or "[::1]:5678".
std::string format_address(const sockaddr_storage& addr);

}  // namespace sluice
