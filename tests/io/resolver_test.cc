// Names are resolved without blocking: a numeric address is done at once, a
// name ("localhost", from /etc/hosts) is in progress first and done after
// polling; a resolver abandoned mid-lookup goes away cleanly.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>

#include <chrono>
#include <thread>

#include "io/resolver.h"

namespace sluice {
namespace {

uint16_t port_of(const sockaddr_storage& ss) {
  if (ss.ss_family == AF_INET) return ntohs(reinterpret_cast<const sockaddr_in*>(&ss)->sin_port);
  return ntohs(reinterpret_cast<const sockaddr_in6*>(&ss)->sin6_port);
}

TEST(Resolver, NumericAddressesAreDoneAtOnce) {
  Resolver r;
  EXPECT_EQ(r.start("127.0.0.1", 9092), Resolver::State::done);
  EXPECT_EQ(r.address().ss_family, AF_INET);
  EXPECT_EQ(port_of(r.address()), 9092);
  EXPECT_EQ(r.start("::1", 19092), Resolver::State::done);
  EXPECT_EQ(r.address().ss_family, AF_INET6);
  EXPECT_EQ(port_of(r.address()), 19092);
}

TEST(Resolver, ANameIsLookedUpOffTheCallersThread) {
  Resolver r;
  Resolver::State s = r.start("localhost", 9093);
  // The call returned without the answer (or, at the latest, with it from a cache).
  ASSERT_TRUE(s == Resolver::State::resolving || s == Resolver::State::done);
  for (int i = 0; i < 5000 && s == Resolver::State::resolving; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
    s = r.poll();
  }
  ASSERT_EQ(s, Resolver::State::done) << r.error();
  EXPECT_TRUE(r.address().ss_family == AF_INET || r.address().ss_family == AF_INET6);
  EXPECT_EQ(port_of(r.address()), 9093);
}

TEST(Resolver, AbandonedLookupsAndRestartsAreSafe) {
  for (int i = 0; i < 50; ++i) {
    Resolver r;
    r.start("localhost", 1);
    r.start("localhost", 2);  // cancels or leaves the first
  }  // destroyed mid-lookup
  Resolver r;
  r.start("localhost", 3);
  EXPECT_EQ(r.start("10.1.2.3", 4), Resolver::State::done);
  // Every abandoned request is freed once its lookup has ended (the leak
  // checker of the sanitizer build sees any that is not).
  size_t running = Resolver::reap_abandoned();
  for (int i = 0; i < 5000 && running > 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
    running = Resolver::reap_abandoned();
  }
  EXPECT_EQ(running, 0u);
}

}  // namespace
}  // namespace sluice
