#include "io/http.h"

#include <gtest/gtest.h>

#include <string>
#include <string_view>
#include <vector>

namespace sluice {
namespace {

constexpr std::string_view kPrometheusScrape =
    "GET /metrics HTTP/1.1\r\n"
    "Host: 127.0.0.1:9464\r\n"
    "User-Agent: Prometheus/2.42.0\r\n"
    "Accept: "
    "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5,*/*;q=0.1\r\n"
    "Accept-Encoding: gzip\r\n"
    "X-Prometheus-Scrape-Timeout-Seconds: 10\r\n"
    "\r\n";

bool inside(std::string_view part, std::string_view whole) {
  return part.data() >= whole.data() && part.data() + part.size() <= whole.data() + whole.size();
}

TEST(HttpParse, PrometheusScrape) {
  HttpRequest r;
  ASSERT_EQ(parse_request(kPrometheusScrape, r), ParseStatus::complete);
  EXPECT_EQ(r.method, HttpMethod::get);
  EXPECT_EQ(r.method_token, "GET");
  EXPECT_EQ(r.target, "/metrics");
  EXPECT_EQ(r.path, "/metrics");
  EXPECT_EQ(r.query, "");
  EXPECT_EQ(r.version_minor, 1);
  EXPECT_EQ(r.head_bytes, kPrometheusScrape.size());
  for (std::string_view v : {r.method_token, r.target, r.path, r.query}) {
    EXPECT_TRUE(inside(v, kPrometheusScrape));
  }
}

TEST(HttpParse, MethodsPathAndQuery) {
  HttpRequest r;
  ASSERT_EQ(parse_request("HEAD /metrics?format=json&x=1 HTTP/1.0\r\n\r\n", r),
            ParseStatus::complete);
  EXPECT_EQ(r.method, HttpMethod::head);
  EXPECT_EQ(r.path, "/metrics");
  EXPECT_EQ(r.query, "format=json&x=1");
  EXPECT_EQ(r.version_minor, 0);

  ASSERT_EQ(parse_request("POST /metrics HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc", r),
            ParseStatus::complete);
  EXPECT_EQ(r.method, HttpMethod::other);
  EXPECT_EQ(r.method_token, "POST");

  ASSERT_EQ(parse_request("get / HTTP/1.1\r\n\r\n", r), ParseStatus::complete);
  EXPECT_EQ(r.method, HttpMethod::other) << "methods are case-sensitive";

  ASSERT_EQ(parse_request("GET /?q HTTP/1.1\r\n\r\n", r), ParseStatus::complete);
  EXPECT_EQ(r.path, "/");
  EXPECT_EQ(r.query, "q");
  ASSERT_EQ(parse_request("GET /a?b?c HTTP/1.1\r\n\r\n", r), ParseStatus::complete);
  EXPECT_EQ(r.path, "/a");
  EXPECT_EQ(r.query, "b?c");
}

TEST(HttpParse, AbsoluteAndAsteriskForms) {
  HttpRequest r;
  ASSERT_EQ(parse_request("GET http://host:9464/metrics?x HTTP/1.1\r\n\r\n", r),
            ParseStatus::complete);
  EXPECT_EQ(r.target, "http://host:9464/metrics?x");
  EXPECT_EQ(r.path, "/metrics");
  EXPECT_EQ(r.query, "x");
  ASSERT_EQ(parse_request("GET HTTPS://host HTTP/1.1\r\n\r\n", r), ParseStatus::complete);
  EXPECT_EQ(r.path, "");
  ASSERT_EQ(parse_request("GET http://h?q HTTP/1.1\r\n\r\n", r), ParseStatus::complete);
  EXPECT_EQ(r.path, "");
  EXPECT_EQ(r.query, "q");
  std::string_view options = "OPTIONS * HTTP/1.1\r\n\r\n";
  ASSERT_EQ(parse_request(options, r), ParseStatus::complete);
  EXPECT_EQ(r.path, "*");
  EXPECT_EQ(r.method, HttpMethod::other);
  // Regression (found by the fuzz target): the empty query of "*" was a null
  // view rather than one inside the input.
  EXPECT_TRUE(inside(r.query, options));
}

TEST(HttpParse, BareLineFeedsAndLeadingEmptyLines) {
  HttpRequest r;
  ASSERT_EQ(parse_request("GET /m HTTP/1.1\nHost: x\n\n", r), ParseStatus::complete);
  EXPECT_EQ(r.path, "/m");
  EXPECT_EQ(r.head_bytes, 25u);
  ASSERT_EQ(parse_request("GET /m HTTP/1.1\r\nHost: x\n\r\n", r), ParseStatus::complete);
  std::string_view leading = "\r\n\nGET /m HTTP/1.1\r\n\r\n";
  ASSERT_EQ(parse_request(leading, r), ParseStatus::complete);
  EXPECT_EQ(r.path, "/m");
  EXPECT_EQ(r.head_bytes, leading.size());
}

TEST(HttpParse, HeaderValuesMayHoldTabsAndHighBytes) {
  HttpRequest r;
  EXPECT_EQ(parse_request("GET / HTTP/1.1\r\nX:\tv a\xff\r\nEmpty:\r\nY :z\r\n\r\n", r),
            ParseStatus::bad_request)
      << "space before the colon is refused (RFC 9112 §5.1)";
  EXPECT_EQ(parse_request("GET / HTTP/1.1\r\nX:\tv a\xff\r\nEmpty:\r\n\r\n", r),
            ParseStatus::complete);
}

// Bytes after the head (a body, a second request, garbage) are not looked at.
TEST(HttpParse, PipelinedGarbageAfterTheHeadIsIgnored) {
  std::string head = "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n";
  for (std::string_view tail :
       {std::string_view("GET /other HTTP/1.1\r\n\r\n"), std::string_view("\x00\x01\xff\r\r", 5),
        std::string_view(" \t junk"), std::string_view("\r\n\r\n")}) {
    std::string bytes = head + std::string(tail);
    HttpRequest r;
    ASSERT_EQ(parse_request(bytes, r), ParseStatus::complete);
    EXPECT_EQ(r.head_bytes, head.size());
    EXPECT_EQ(r.path, "/metrics");
  }
  // Even 100 KiB of it: the limit is on the head, not the buffer.
  std::string big = head + std::string(100 * 1024, 'x');
  HttpRequest r;
  EXPECT_EQ(parse_request(big, r), ParseStatus::complete);
}

// Every prefix of a valid head needs more; the whole head completes with the
// same fields, whichever byte the reads were split at.
TEST(HttpParse, SplitAtEveryByte) {
  const std::vector<std::string> requests = {
      std::string(kPrometheusScrape),
      "GET /m?x=1 HTTP/1.0\nA: b\n\n",
      "\r\nHEAD http://h/p HTTP/1.1\r\nX:\r\n\r\n",
  };
  for (const std::string& req : requests) {
    HttpRequest whole;
    ASSERT_EQ(parse_request(req, whole), ParseStatus::complete);
    for (size_t n = 0; n < req.size(); ++n) {
      HttpRequest r;
      r.head_bytes = 12345;
      ASSERT_EQ(parse_request(std::string_view(req).substr(0, n), r), ParseStatus::need_more)
          << "prefix of " << n << " bytes of " << req;
      EXPECT_EQ(r.head_bytes, 12345u) << "out is left alone unless complete";
    }
    // A reader that appends each read to a buffer and parses the buffer.
    for (size_t split = 0; split <= req.size(); ++split) {
      std::string buffer = req.substr(0, split);
      HttpRequest r;
      ParseStatus first = parse_request(buffer, r);
      ASSERT_EQ(first, split == req.size() ? ParseStatus::complete : ParseStatus::need_more);
      buffer += req.substr(split);
      ASSERT_EQ(parse_request(buffer, r), ParseStatus::complete);
      EXPECT_EQ(r.method, whole.method);
      EXPECT_EQ(r.path, std::string_view(whole.path));
      EXPECT_EQ(r.query, std::string_view(whole.query));
      EXPECT_EQ(r.head_bytes, whole.head_bytes);
    }
  }
}

TEST(HttpParse, MalformedIsBadRequest) {
  const std::vector<std::string_view> bad = {
      "GET  / HTTP/1.1\r\n\r\n",                                // two spaces
      " GET / HTTP/1.1\r\n\r\n",                                // leading space
      "GET / HTTP/1.1 \r\n\r\n",                                // trailing space
      "GET /\r\n\r\n",                                          // HTTP/0.9
      "GET / HTTP/2.0\r\n\r\n",                                 // not 1.x
      "GET / HTTP/1.10\r\n\r\n",                                // two digits
      "GET / http/1.1\r\n\r\n",                                 // case-sensitive version
      "GET metrics HTTP/1.1\r\n\r\n",                           // not a known form
      "GET ftp://h/ HTTP/1.1\r\n\r\n",                          // scheme
      "GET http:///p HTTP/1.1\r\n\r\n",                         // no host
      "GET /a#frag HTTP/1.1\r\n\r\n",                           // fragment
      "GET /\x7f HTTP/1.1\r\n\r\n",                             // DEL in the target
      "GET /\xc3\xa9 HTTP/1.1\r\n\r\n",                         // raw UTF-8 in the target
      "G(T / HTTP/1.1\r\n\r\n",                                 // not a token
      "GET / HTTP/1.1\rHost: x\r\n\r\n",                        // bare CR
      "GET / HTTP/1.1\r\r\n\r\n",                               // CR CR LF
      "GET / HTTP/1.1\r\nHost x\r\n\r\n",                       // no colon
      "GET / HTTP/1.1\r\n: x\r\n\r\n",                          // empty field name
      "GET / HTTP/1.1\r\nHo st: x\r\n\r\n",                     // space in the name
      "GET / HTTP/1.1\r\nA: b\r\n c\r\n\r\n",                   // obs-fold
      "GET / HTTP/1.1\r\nA: b\x01\r\n\r\n",                     // control byte in a value
      "GET / HTTP/1.1\r\nA: b\rc\r\n\r\n",                      // CR inside a value
      std::string_view("GET / HTTP/1.1\r\nA: \0\r\n\r\n", 22),  // NUL
      "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",           // a TLS hello, no LF at all
  };
  for (std::string_view b : bad) {
    HttpRequest r;
    EXPECT_EQ(parse_request(b, r), ParseStatus::bad_request) << b;
    // Monotonic: once a prefix is bad, every longer one is.
    bool seen_bad = false;
    for (size_t n = 0; n <= b.size(); ++n) {
      ParseStatus s = parse_request(b.substr(0, n), r);
      if (seen_bad) {
        ASSERT_EQ(s, ParseStatus::bad_request) << n << ": " << b;
      }
      if (s == ParseStatus::bad_request) seen_bad = true;
      ASSERT_NE(s, ParseStatus::complete) << n << ": " << b;
    }
  }
}

TEST(HttpParse, BinaryGarbageIsRefusedAtOnce) {
  HttpRequest r;
  EXPECT_EQ(parse_request("\x16\x03", r), ParseStatus::bad_request);
  EXPECT_EQ(parse_request("GET /\x01", r), ParseStatus::bad_request);
  EXPECT_EQ(parse_request("GET / HTTP/1.1\r\nA\x01", r), ParseStatus::bad_request);
  EXPECT_EQ(parse_request("GET / HTTP/1.1\r\n ", r), ParseStatus::bad_request);
  EXPECT_EQ(parse_request("GET / HTTP/1.1\r\nA: b\r", r), ParseStatus::need_more);
  EXPECT_EQ(parse_request("GET / HTTP/1.1\r", r), ParseStatus::need_more);
  EXPECT_EQ(parse_request("GET / HTTP/1.1\r\n\r", r), ParseStatus::need_more);
}

std::string request_with_head_bytes(size_t n) {
  // "GET / HTTP/1.1\r\n" + "X: " + filler + "\r\n" + "\r\n"
  std::string head = "GET / HTTP/1.1\r\nX: ";
  size_t fixed = head.size() + 4;
  head += std::string(n - fixed, 'a');
  head += "\r\n\r\n";
  return head;
}

TEST(HttpParse, HugeHeadersAreTooLarge) {
  HttpRequest r;
  std::string at_limit = request_with_head_bytes(kHttpRequestHeadBytesMax);
  ASSERT_EQ(at_limit.size(), kHttpRequestHeadBytesMax);
  ASSERT_EQ(parse_request(at_limit, r), ParseStatus::complete);
  EXPECT_EQ(r.head_bytes, kHttpRequestHeadBytesMax);

  std::string over = request_with_head_bytes(kHttpRequestHeadBytesMax + 1);
  EXPECT_EQ(parse_request(over, r), ParseStatus::too_large);
  // Before the limit is reached nothing says it will be: need more.
  EXPECT_EQ(parse_request(std::string_view(over).substr(0, kHttpRequestHeadBytesMax - 1), r),
            ParseStatus::need_more);
  EXPECT_EQ(parse_request(std::string_view(over).substr(0, kHttpRequestHeadBytesMax), r),
            ParseStatus::too_large);

  // Many small headers, and one endless request line.
  std::string many = "GET / HTTP/1.1\r\n";
  while (many.size() < 3 * kHttpRequestHeadBytesMax) many += "X-A: b\r\n";
  many += "\r\n";
  EXPECT_EQ(parse_request(many, r), ParseStatus::too_large);
  std::string long_target = "GET /" + std::string(20'000, 'a');
  EXPECT_EQ(parse_request(long_target, r), ParseStatus::too_large);
  EXPECT_EQ(parse_request(long_target + " HTTP/1.1\r\n\r\n", r), ParseStatus::too_large);
  // A bad byte inside the window is still a bad request, whatever the length.
  std::string bad_then_long = "GET / HTTP/1.1\r\nA\x01" + std::string(20'000, 'a');
  EXPECT_EQ(parse_request(bad_then_long, r), ParseStatus::bad_request);
}

TEST(HttpParse, StatusNames) {
  EXPECT_STREQ(to_string(ParseStatus::too_large), "request head too large");
  EXPECT_EQ(http_reason_phrase(431), "Request Header Fields Too Large");
  EXPECT_EQ(http_reason_phrase(299), "");
}

TEST(HttpResponse, OkWithBody) {
  std::string out = "stale";
  build_response(200, "text/plain; version=0.0.4; charset=utf-8", "a 1\n", out);
  EXPECT_EQ(out,
            "HTTP/1.1 200 OK\r\n"
            "Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n"
            "Content-Length: 4\r\n"
            "Connection: close\r\n"
            "\r\n"
            "a 1\n");
}

TEST(HttpResponse, HeadOmitsTheBodyButNotItsLength) {
  std::string out;
  build_response(200, "application/json", "{\"a\":1}", out, ResponseBody::omit);
  EXPECT_EQ(out,
            "HTTP/1.1 200 OK\r\n"
            "Content-Type: application/json\r\n"
            "Content-Length: 7\r\n"
            "Connection: close\r\n"
            "\r\n");
}

// What the endpoint answers to a POST: 405 with the Allow header RFC 9110 requires.
TEST(HttpResponse, NonGetGets405WithAllow) {
  HttpRequest r;
  ASSERT_EQ(parse_request("POST /metrics HTTP/1.1\r\n\r\n", r), ParseStatus::complete);
  ASSERT_EQ(r.method, HttpMethod::other);
  std::string out;
  build_response(405, "text/plain", "method not allowed\n", out);
  EXPECT_EQ(out,
            "HTTP/1.1 405 Method Not Allowed\r\n"
            "Content-Type: text/plain\r\n"
            "Content-Length: 19\r\n"
            "Allow: GET, HEAD\r\n"
            "Connection: close\r\n"
            "\r\n"
            "method not allowed\n");
}

TEST(HttpResponse, ErrorsWithoutContentType) {
  std::string out;
  build_response(431, "", "", out);
  EXPECT_EQ(out,
            "HTTP/1.1 431 Request Header Fields Too Large\r\n"
            "Content-Length: 0\r\n"
            "Connection: close\r\n"
            "\r\n");
  build_response(299, "", "x", out);
  EXPECT_TRUE(out.starts_with("HTTP/1.1 299 \r\nContent-Length: 1\r\n")) << out;
}

TEST(HttpResponse, BigBody) {
  std::string body(1 << 20, 'z');
  std::string out;
  build_response(200, "text/plain", body, out);
  EXPECT_NE(out.find("\r\nContent-Length: 1048576\r\n"), std::string::npos);
  EXPECT_TRUE(out.ends_with(body));
  EXPECT_EQ(out.size(), out.find("\r\n\r\n") + 4 + body.size());
}

}  // namespace
}  // namespace sluice
