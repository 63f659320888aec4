// nudge_http: the request and response readers (Beast underneath) fed whole,
// byte by byte and pipelined; the limits and the status each refusal asks
// for; keep-alive semantics; and the writers' exact bytes.
#include <gtest/gtest.h>

#include <string>
#include <string_view>

#include "nudge/http/reader.hpp"
#include "nudge/http/writer.hpp"

namespace nudge::http {
namespace {

using protocol::as_bytes;

// The head Mono's SoapHttpClientProtocol sent (wave2-protocols.md §1.1), with a 487-byte body.
constexpr std::string_view mono_head =
    "POST /Bus.asmx HTTP/1.1\r\n"
    "User-Agent: Mozilla/4.0 (compatible; MSIE 6.0; MS Web Services Client Protocol 4.0.30319.42000)\r\n"
    "Content-Type: text/xml; charset=utf-8\r\n"
    "SOAPAction: \"http://tempuri.org/Poll\"\r\n"
    "Content-Length: 487\r\n"
    "Expect: 100-continue\r\n"
    "Connection: keep-alive\r\n"
    "Host: 127.0.0.1:18765\r\n"
    "\r\n";

std::string body_of(std::size_t n) {
  std::string b(n, 'x');
  for (std::size_t i = 0; i < n; i += 7) b[i] = static_cast<char>('a' + i % 26);
  return b;
}

std::string simple_get(std::string_view target, std::string_view extra = {}) {
  return "GET " + std::string(target) + " HTTP/1.1\r\nHost: h\r\n" + std::string(extra) + "\r\n";
}

TEST(HttpRequestReader, ReadsMonosPollRequestWhole) {
  ASSERT_EQ(mono_head.size(), 292u);
  const std::string wire = std::string(mono_head) + body_of(487);
  request_reader r;
  r.feed(as_bytes(wire));
  EXPECT_TRUE(r.take_continue() == false) << "the body is already here: no 100 Continue is due";
  auto d = r.next();
  ASSERT_TRUE(d.complete()) << d.reason;
  EXPECT_EQ(d.consumed, 292u + 487u);
  EXPECT_EQ(d.value.method, "POST");
  EXPECT_EQ(d.value.target, "/Bus.asmx");
  EXPECT_EQ(d.value.version, http_1_1);
  ASSERT_EQ(d.value.headers.list.size(), 7u);
  EXPECT_EQ(d.value.headers.list[0].name, "User-Agent");
  EXPECT_EQ(d.value.headers.list[6].name, "Host");
  EXPECT_EQ(d.value.headers.find("soapaction").value_or(""), "\"http://tempuri.org/Poll\"");
  EXPECT_TRUE(d.value.expect_continue);
  EXPECT_TRUE(d.value.keep_alive);
  EXPECT_EQ(d.value.body, body_of(487));
  EXPECT_TRUE(r.next().need_more());
  EXPECT_EQ(r.buffered(), 0u);
}

TEST(HttpRequestReader, ByteAtATimeAsksForContinueOnceAtTheEndOfTheHead) {
  const std::string wire = std::string(mono_head) + body_of(487);
  request_reader r;
  int continues = 0;
  std::size_t continue_at = 0;
  for (std::size_t i = 0; i < wire.size(); ++i) {
    r.feed(as_bytes(std::string_view(wire).substr(i, 1)));
    if (r.take_continue()) {
      ++continues;
      continue_at = i + 1;
    }
    auto d = r.next();
    if (i + 1 < wire.size()) {
      ASSERT_TRUE(d.need_more()) << "at byte " << i << ": " << d.reason;
    } else {
      ASSERT_TRUE(d.complete()) << d.reason;
      EXPECT_EQ(d.consumed, wire.size());
      EXPECT_EQ(d.value.body, body_of(487));
    }
  }
  EXPECT_EQ(continues, 1);
  EXPECT_EQ(continue_at, mono_head.size());
}

TEST(HttpRequestReader, EverySplitInTwoGivesTheSameRequest) {
  const std::string wire = std::string(mono_head) + body_of(487);
  request_reader whole;
  whole.feed(as_bytes(wire));
  const auto expected = whole.next();
  ASSERT_TRUE(expected.complete());
  for (std::size_t cut = 1; cut < wire.size(); ++cut) {
    request_reader r;
    r.feed(as_bytes(std::string_view(wire).substr(0, cut)));
    ASSERT_TRUE(r.next().need_more()) << cut;
    r.feed(as_bytes(std::string_view(wire).substr(cut)));
    auto d = r.next();
    ASSERT_TRUE(d.complete()) << cut << ": " << d.reason;
    EXPECT_EQ(d.value, expected.value) << cut;
  }
}

TEST(HttpRequestReader, GarbageIsRefusedWhateverTheSplit) {
  // A TLS ClientHello's first bytes: refused at once, not after a header's worth.
  const std::string wire = "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 and more";
  for (std::size_t cut = 1; cut < wire.size(); ++cut) {
    request_reader r;
    r.feed(as_bytes(std::string_view(wire).substr(0, cut)));
    const bool early = r.next().malformed();
    r.feed(as_bytes(std::string_view(wire).substr(cut)));
    EXPECT_TRUE(r.next().malformed()) << cut;
    EXPECT_EQ(r.refusal_status(), 400);
    if (cut >= 8) {
      EXPECT_TRUE(early) << "refused from its first 8 bytes, cut " << cut;
    }
  }
}

TEST(HttpRequestReader, PipelinedRequestsComeOutOneByOne) {
  const std::string one = simple_get("/a");
  const std::string two = "POST /b HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello";
  const std::string three = simple_get("/c", "Connection: close\r\n");
  request_reader r;
  r.feed(as_bytes(one + two + three + "GET /d HT"));
  auto a = r.next();
  auto b = r.next();
  auto c = r.next();
  ASSERT_TRUE(a.complete() && b.complete() && c.complete());
  EXPECT_EQ(a.value.target, "/a");
  EXPECT_EQ(a.consumed, one.size());
  EXPECT_EQ(b.value.target, "/b");
  EXPECT_EQ(b.value.body, "hello");
  EXPECT_EQ(b.consumed, two.size());
  EXPECT_EQ(c.value.target, "/c");
  EXPECT_FALSE(c.value.keep_alive);
  EXPECT_TRUE(r.next().need_more());
  EXPECT_EQ(r.buffered(), 9u);
  r.feed(as_bytes("TP/1.1\r\nHost: h\r\n\r\n"));
  auto d = r.next();
  ASSERT_TRUE(d.complete());
  EXPECT_EQ(d.value.target, "/d");
}

TEST(HttpRequestReader, TruncatedRequestsWait) {
  const std::string wire = std::string(mono_head) + body_of(487);
  for (std::size_t cut : {std::size_t{0}, std::size_t{1}, std::size_t{100}, mono_head.size() - 1, mono_head.size(),
                          wire.size() - 1}) {
    request_reader r;
    r.feed(as_bytes(std::string_view(wire).substr(0, cut)));
    auto d = r.next();
    EXPECT_TRUE(d.need_more()) << cut << ": " << d.reason;
    EXPECT_EQ(r.refusal_status(), 0);
  }
}

TEST(HttpRequestReader, ChunkedBodyIsDecoded) {
  request_reader r;
  r.feed(as_bytes("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"));
  auto d = r.next();
  ASSERT_TRUE(d.complete()) << d.reason;
  EXPECT_EQ(d.value.body, "hello world");
}

struct refusal_case {
  const char* name;
  std::string wire;
  int status;
};

TEST(HttpRequestReader, RefusalsCarryTheStatusToAnswer) {
  limits small;
  small.max_header_bytes = 256;
  small.max_body_bytes = 100;
  const std::string big_field = "X-Filler: " + std::string(300, 'f') + "\r\n";
  const std::vector<refusal_case> cases = {
      {"header too large", simple_get("/", big_field), 431},
      {"header too large, unterminated", "GET / HTTP/1.1\r\n" + big_field, 431},
      {"Content-Length over the limit", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 101\r\n\r\n", 413},
      {"chunked over the limit",
       "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n65\r\n" + std::string(101, 'b') + "\r\n0\r\n\r\n", 413},
      {"unsupported Expect", simple_get("/", "Expect: 200-ok\r\n"), 417},
      {"HTTP/2.0", "GET / HTTP/2.0\r\nHost: h\r\n\r\n", 505},
      {"HTTP/1.1 without Host", "GET / HTTP/1.1\r\n\r\n", 400},
      {"garbage", "\x16\x03\x01\x02\x00 hello\r\n\r\n", 400},
      {"bad Content-Length", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1x\r\n\r\n", 400},
      {"two Content-Lengths", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab", 400},
      {"space in a field name", "GET / HTTP/1.1\r\nHost: h\r\nBad Name: v\r\n\r\n", 400},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    request_reader r(small);
    r.feed(as_bytes(c.wire));
    auto d = r.next();
    ASSERT_TRUE(d.malformed()) << (d.complete() ? "complete" : "need more");
    EXPECT_FALSE(d.reason.empty());
    EXPECT_EQ(r.refusal_status(), c.status) << d.reason;
    // A refused reader stays refused, whatever follows.
    r.feed(as_bytes(simple_get("/")));
    EXPECT_TRUE(r.next().malformed());
  }
}

TEST(HttpRequestReader, SlowlorisHeaderIsRefusedAtTheLimit) {
  limits l;
  l.max_header_bytes = 1024;
  request_reader r(l);
  std::string wire = "GET / HTTP/1.1\r\nHost: h\r\n";
  while (wire.size() < 4096) wire += "X-a: b\r\n";
  std::size_t fed = 0;
  for (; fed < wire.size(); ++fed) {
    r.feed(as_bytes(std::string_view(wire).substr(fed, 1)));
    if (!r.next().need_more()) break;
  }
  EXPECT_EQ(r.refusal_status(), 431);
  EXPECT_LE(fed, l.max_header_bytes + 1) << "refused only after the limit was passed";
  EXPECT_GE(fed, l.max_header_bytes - 8);
}

TEST(HttpRequestReader, KeepAliveFollowsVersionAndConnection) {
  struct ka {
    std::string wire;
    bool keep;
  };
  for (const auto& c : std::vector<ka>{{"GET / HTTP/1.1\r\nHost: h\r\n\r\n", true},
                                       {"GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n", false},
                                       {"GET / HTTP/1.1\r\nHost: h\r\nConnection: Keep-Alive, Close\r\n\r\n", false},
                                       {"GET / HTTP/1.0\r\n\r\n", false},
                                       {"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", true}}) {
    request_reader r;
    r.feed(as_bytes(c.wire));
    auto d = r.next();
    ASSERT_TRUE(d.complete()) << c.wire << d.reason;
    EXPECT_EQ(d.value.keep_alive, c.keep) << c.wire;
    EXPECT_EQ(d.value.keep_alive, keeps_alive(d.value.version, d.value.headers));
  }
}

TEST(HttpRequestReader, Http10ClientGetsNoContinue) {
  request_reader r;
  r.feed(as_bytes("POST / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n"));
  EXPECT_FALSE(r.take_continue());
  r.feed(as_bytes("abc"));
  auto d = r.next();
  ASSERT_TRUE(d.complete()) << d.reason;
  EXPECT_FALSE(d.value.expect_continue);
}

TEST(HttpWriter, RequestBytesAreExactAndReadBack) {
  request q;
  q.method = "POST";
  q.target = "/Bus.asmx";
  q.headers.add("Zeta", "1");
  q.headers.add("Alpha", "2");
  q.headers.add("Host", "h");
  q.body = "payload";
  set_content_length(q);
  const auto wire = serialize(q);
  const std::string text(wire.begin(), wire.end());
  EXPECT_EQ(text, "POST /Bus.asmx HTTP/1.1\r\nZeta: 1\r\nAlpha: 2\r\nHost: h\r\nContent-Length: 7\r\n\r\npayload");
  EXPECT_EQ(serialize_head(q).size() + q.body.size(), wire.size());
  request_reader r;
  r.feed(wire);
  auto d = r.next();
  ASSERT_TRUE(d.complete());
  EXPECT_EQ(d.value, q);
}

TEST(HttpWriter, ResponseBytesAreExactAndReadBack) {
  response a = plain_response(404, "nope");
  const auto wire = serialize(a);
  EXPECT_EQ(std::string(wire.begin(), wire.end()),
            "HTTP/1.1 404 Not Found\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 4\r\n"
            "Connection: close\r\n\r\nnope");
  response_reader r;
  r.feed(wire);
  auto d = r.next();
  ASSERT_TRUE(d.complete()) << d.reason;
  EXPECT_EQ(d.value, a);
  EXPECT_EQ(d.consumed, wire.size());
}

TEST(HttpWriter, ImfFixdate) {
  EXPECT_EQ(imf_fixdate(1251280800), "Wed, 26 Aug 2009 10:00:00 GMT");
  EXPECT_EQ(imf_fixdate(0), "Thu, 01 Jan 1970 00:00:00 GMT");
  EXPECT_EQ(imf_fixdate(951782400), "Tue, 29 Feb 2000 00:00:00 GMT");
}

TEST(HttpResponseReader, InterimContinueThenTheAnswer) {
  response ok;
  ok.body = "<x/>";
  ok.headers.add("Content-Type", "text/xml");
  set_content_length(ok);
  const auto final_bytes = serialize(ok);
  std::string wire(continue_line());
  wire.append(final_bytes.begin(), final_bytes.end());
  response_reader r;
  // Split in the middle of the 100's line: nothing until it is whole.
  r.feed(as_bytes(std::string_view(wire).substr(0, 10)));
  EXPECT_TRUE(r.next().need_more());
  r.feed(as_bytes(std::string_view(wire).substr(10)));
  auto first = r.next();
  ASSERT_TRUE(first.complete()) << first.reason;
  EXPECT_EQ(first.value.status, 100);
  EXPECT_EQ(first.consumed, continue_line().size());
  auto second = r.next();
  ASSERT_TRUE(second.complete()) << second.reason;
  EXPECT_EQ(second.value.status, 200);
  EXPECT_EQ(second.value.body, "<x/>");
}

TEST(HttpResponseReader, BodyUntilTheConnectionEnds) {
  response_reader r;
  r.feed(as_bytes("HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nsome "));
  r.feed(as_bytes("text"));
  EXPECT_TRUE(r.next().need_more());
  r.feed_eof();
  auto d = r.next();
  ASSERT_TRUE(d.complete()) << d.reason;
  EXPECT_EQ(d.value.body, "some text");
  EXPECT_FALSE(d.value.keep_alive);
}

TEST(HttpResponseReader, HeadResponseHasNoBody) {
  response_reader r;
  r.expect_head_response();
  r.feed(as_bytes("HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n"));
  auto a = r.next();
  ASSERT_TRUE(a.complete()) << a.reason;
  EXPECT_TRUE(a.value.body.empty());
  auto b = r.next();
  ASSERT_TRUE(b.complete()) << b.reason;
  EXPECT_EQ(b.value.status, 204);
}

TEST(HttpResponseReader, OversizedAndBrokenResponsesAreRefused) {
  limits l;
  l.max_body_bytes = 10;
  {
    response_reader r(l);
    r.feed(as_bytes("HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\n"));
    EXPECT_TRUE(r.next().malformed());
    EXPECT_EQ(r.refusal_status(), 502);
  }
  {
    response_reader r(l);
    r.feed(as_bytes("SMTP 220 hello\r\n\r\n"));
    EXPECT_TRUE(r.next().malformed());
  }
  {
    response_reader r(l);
    r.feed(as_bytes("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nab"));
    r.feed_eof();
    EXPECT_TRUE(r.next().malformed()) << "a body cut by the connection's end";
  }
}

}  // namespace
}  // namespace nudge::http
