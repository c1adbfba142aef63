// RESP: commands as Redis reads them (checked against the protocol's own
// examples), and the reply reader on whole, partial and malformed replies.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "io/redis/resp.h"

namespace sluice {
namespace {

TEST(Resp, CommandsAreArraysOfBulkStrings) {
  char buf[256];
  size_t n = resp::write_array_header(3, buf);
  n += resp::write_bulk("SET", buf + n);
  n += resp::write_bulk("key", buf + n);
  n += resp::write_bulk("", buf + n);
  EXPECT_EQ(std::string(buf, n), "*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$0\r\n\r\n");
  n = resp::write_bulk(std::string_view("a\r\nb\0c", 6), buf);
  EXPECT_EQ(std::string(buf, n), std::string("$6\r\na\r\nb\0c\r\n", 12));  // binary-safe
}

TEST(Resp, RepliesOfEveryType) {
  struct Case {
    std::string in;
    resp::Reply::Type type;
    std::string text;
    int64_t integer;
    size_t consumed;
  };
  using T = resp::Reply::Type;
  const Case cases[] = {
      {"+OK\r\n", T::simple, "OK", 0, 5},
      {"-ERR unknown command\r\n+OK\r\n", T::error, "ERR unknown command", 0, 22},
      {":-42\r\n", T::integer, "", -42, 6},
      {"$5\r\nhe\r\nl\r\n", T::bulk, "he\r\nl", 0, 11},
      {"$-1\r\n", T::null, "", 0, 5},
      {"*-1\r\n", T::null, "", 0, 5},
      {"*2\r\n:1\r\n*1\r\n$1\r\nx\r\n:9\r\n", T::array, "", 2, 19},
  };
  for (const Case& c : cases) {
    resp::Reply r;
    size_t consumed = 0;
    ASSERT_EQ(resp::parse_reply(c.in, r, consumed), resp::ParseStatus::complete) << c.in;
    EXPECT_EQ(r.type, c.type) << c.in;
    EXPECT_EQ(r.text, c.text) << c.in;
    if (c.type == T::integer || c.type == T::array) {
      EXPECT_EQ(r.integer, c.integer) << c.in;
    }
    EXPECT_EQ(consumed, c.consumed) << c.in;
    // Every proper prefix is incomplete.
    for (size_t k = 0; k < c.consumed; ++k) {
      EXPECT_EQ(resp::parse_reply(std::string_view(c.in).substr(0, k), r, consumed), resp::ParseStatus::incomplete)
          << c.in << " cut at " << k;
    }
  }
}

TEST(Resp, MalformedRepliesAreNotTrusted) {
  for (const std::string& in : std::vector<std::string>{"OK\r\n", "+OK\n", "+O\rK\r\n", ":12x\r\n", ":\r\n", "$3\r\nabcd\r\n", "$-2\r\n",
                         "$999999999999\r\n", "*-5\r\n", "*2\r\n:1\r\n?\r\n", std::string(10, '*') + "1\r\n"}) {
    resp::Reply r;
    size_t consumed = 0;
    EXPECT_EQ(resp::parse_reply(in, r, consumed), resp::ParseStatus::malformed) << in;
  }
  // Nesting past the limit.
  std::string deep;
  for (int i = 0; i <= resp::kDepthMax; ++i) deep += "*1\r\n";
  deep += ":1\r\n";
  resp::Reply r;
  size_t consumed = 0;
  EXPECT_EQ(resp::parse_reply(deep, r, consumed), resp::ParseStatus::malformed);
}

TEST(Resp, TransientErrorsAreTheOnesThatHeal) {
  for (const char* e : {"LOADING Redis is loading the dataset in memory", "BUSY Redis is busy running a script",
                        "READONLY You can't write against a read only replica.", "OOM command not allowed",
                        "TRYAGAIN Multiple keys request during rehashing of slot", "MASTERDOWN Link is down"}) {
    EXPECT_TRUE(resp::transient_error(e)) << e;
  }
  for (const char* e : {"WRONGTYPE Operation against a key holding the wrong kind of value", "NOAUTH Authentication required.",
                        "WRONGPASS invalid username-password pair", "NOPERM this user has no permissions",
                        "ERR wrong number of arguments for 'hset' command", "MOVED 3999 127.0.0.1:6381"}) {
    EXPECT_FALSE(resp::transient_error(e)) << e;
  }
  EXPECT_EQ(resp::error_code("WRONGTYPE Operation"), "WRONGTYPE");
}

}  // namespace
}  // namespace sluice
