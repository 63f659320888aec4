// The bus over HTTP: the request our client writes has Mono's head (292
// bytes), a server reads and routes requests (poll, WSDL, 404/405/415,
// refusals as ASMX answers them), and a client reads the answers.
#include <gtest/gtest.h>

#include <pugixml.hpp>
#include <set>
#include <string>

#include "mono_capture.hpp"
#include "nudge/http/reader.hpp"
#include "nudge/http/writer.hpp"
#include "nudge/pollbus/http_binding.hpp"

namespace nudge::pollbus {
namespace {

using protocol::as_bytes;

http::request read_one(std::string_view wire) {
  http::request_reader r;
  r.feed(as_bytes(wire));
  auto d = r.next();
  EXPECT_TRUE(d.complete()) << d.reason;
  return d.value;
}

message register_message() {
  message m;
  m.type = message_type::register_agent;
  m.agent_id = *parse_guid("3f2504e0-4f89-11d3-9a0c-0305e82c3301");
  m.timestamp_ms = dotnet_ms(2009, 8, 26, 10);
  m.computer_name = "PC1";
  m.user_info = "bob";
  return m;
}

TEST(PollbusHttp, OurRequestHeadIsMonos) {
  request_options o;
  o.host = "127.0.0.1:18765";
  const auto q = poll_request(register_message(), encoding::soap, o);
  const auto head = http::serialize_head(q);
  EXPECT_EQ(head.size(), 292u);
  std::string expected(test::mono_head);
  expected.replace(expected.find("Content-Length: 487"), 19, "Content-Length: 491");  // TimeStamp's ".000"
  EXPECT_EQ(std::string(head.begin(), head.end()), expected);
  EXPECT_EQ(q.body.size(), 491u);
}

TEST(PollbusHttp, ServerReadsMonosRequest) {
  const auto q = read_one(std::string(test::mono_head) + std::string(test::mono_body));
  auto call = read_bus_request(q);
  ASSERT_TRUE(call.complete()) << call.reason;
  EXPECT_EQ(call.value.what, bus_call::kind::poll);
  EXPECT_EQ(call.value.enc, encoding::soap);
  EXPECT_EQ(call.value.msg, register_message());
}

TEST(PollbusHttp, PollExchangeRoundTripsInBothEncodings) {
  for (const encoding e : {encoding::soap, encoding::json}) {
    SCOPED_TRACE(std::string(encoding_name(e)));
    const auto q = poll_request(register_message(), e);
    const auto wire = http::serialize(q);
    const auto got = read_one(std::string_view(reinterpret_cast<const char*>(wire.data()), wire.size()));
    auto call = read_bus_request(got);
    ASSERT_TRUE(call.complete()) << call.reason;
    EXPECT_EQ(call.value.enc, e);
    EXPECT_EQ(call.value.msg, register_message());

    message interval;
    interval.type = message_type::poll_interval;
    interval.interval_ms = 2500;
    message chat;
    chat.type = message_type::chat;
    chat.text = "folder changed";
    const std::vector<message> answer{interval, chat};
    response_options ro;
    ro.date_unix_seconds = 1251280800;
    const auto a = poll_response(answer, e, ro);
    EXPECT_EQ(a.headers.find("Date").value_or(""), "Wed, 26 Aug 2009 10:00:00 GMT");
    http::response_reader rr;
    rr.feed(http::serialize(a));
    auto back = rr.next();
    ASSERT_TRUE(back.complete()) << back.reason;
    auto messages = read_poll_response(back.value);
    ASSERT_TRUE(messages.complete()) << messages.reason;
    EXPECT_EQ(messages.value, answer);
  }
}

TEST(PollbusHttp, ResponseHeadersAreAsmxs) {
  const auto a = poll_response({}, encoding::soap);
  std::vector<std::string> names;
  for (const auto& f : a.headers.list) names.push_back(f.name);
  EXPECT_EQ(names, (std::vector<std::string>{"Cache-Control", "Content-Type", "Server", "X-AspNet-Version", "X-Powered-By",
                                             "Content-Length"}));
  EXPECT_EQ(a.headers.find("Content-Length").value_or(""), std::to_string(a.body.size()));
  response_options closing;
  closing.keep_alive = false;
  EXPECT_EQ(poll_response({}, encoding::soap, closing).headers.find("Connection").value_or(""), "close");
}

TEST(PollbusHttp, RoutesOtherRequests) {
  struct route {
    std::string wire;
    bus_call::kind kind;
    int status;
  };
  const std::vector<route> routes = {
      {"GET /Bus.asmx?WSDL HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n", bus_call::kind::wsdl, 200},
      {"GET /bus.asmx?wsdl HTTP/1.1\r\nHost: h\r\n\r\n", bus_call::kind::wsdl, 200},
      {"GET /Other.asmx?WSDL HTTP/1.1\r\nHost: h\r\n\r\n", bus_call::kind::not_found, 404},
      {"GET /Bus.asmx HTTP/1.1\r\nHost: h\r\n\r\n", bus_call::kind::not_found, 404},
      {"DELETE /Bus.asmx HTTP/1.1\r\nHost: h\r\n\r\n", bus_call::kind::method_not_allowed, 405},
      {"POST /Bus.asmx HTTP/1.1\r\nHost: h\r\nContent-Type: text/plain\r\nContent-Length: 0\r\n\r\n",
       bus_call::kind::unsupported_media, 415},
  };
  for (const auto& r : routes) {
    SCOPED_TRACE(r.wire);
    const auto q = read_one(r.wire);
    auto call = read_bus_request(q);
    ASSERT_TRUE(call.complete()) << call.reason;
    EXPECT_EQ(call.value.what, r.kind);
    EXPECT_EQ(route_response(call.value, q).status, r.status);
  }
  const auto q = read_one(routes[0].wire);
  const auto w = route_response(read_bus_request(q).value, q);
  EXPECT_NE(w.body.find("location=\"http://127.0.0.1:8080/Bus.asmx\""), std::string::npos);
}

TEST(PollbusHttp, WsdlDescribesPollAndTheEightSubtypes) {
  pugi::xml_document doc;
  const std::string text = wsdl("http://h/Bus.asmx");
  ASSERT_TRUE(doc.load_string(text.c_str())) << text;
  std::set<std::string> subtypes;
  for (auto n : doc.select_nodes("//s:complexType[s:complexContent/s:extension/@base='tns:BaseMessage']"))
    subtypes.insert(n.node().attribute("name").value());
  std::set<std::string> expected;
  for (std::size_t i = 0; i < message_type_count; ++i) expected.insert(std::string(wire_name(static_cast<message_type>(i))));
  EXPECT_EQ(subtypes, expected);
  EXPECT_TRUE(doc.select_node("//soap:operation[@soapAction='http://tempuri.org/Poll']"));
  EXPECT_TRUE(doc.select_node("//s:element[@name='PollResponse']"));
}

TEST(PollbusHttp, MalformedPollsAreAnsweredAsAsmxDoes) {
  std::string body(test::mono_body);
  body.replace(body.find("RegisterMessage"), 15, "UnheardMessage");
  std::string wire(test::mono_head);
  wire.replace(wire.find("487"), 3, std::to_string(body.size()));
  const auto q = read_one(wire + body);
  auto call = read_bus_request(q);
  ASSERT_TRUE(call.malformed());
  EXPECT_EQ(call.reason, "unknown xsi:type");
  const auto a = refusal_response(q, call.reason);
  EXPECT_EQ(a.status, 500);
  EXPECT_EQ(a.headers.find("Content-Type").value_or(""), "text/xml; charset=utf-8");
  EXPECT_NE(decode_fault(a.body, encoding::soap).value_or("").find("unknown xsi:type"), std::string::npos);
  auto client_view = read_poll_response(a);
  EXPECT_TRUE(client_view.malformed());
  EXPECT_EQ(client_view.reason, "server fault");

  // A wrong SOAPAction is refused the same way; json refusals are 400.
  std::string other_action(test::mono_head);
  other_action.replace(other_action.find("tempuri.org/Poll"), 16, "tempuri.org/Push");
  const auto q2 = read_one(other_action + std::string(test::mono_body));
  EXPECT_TRUE(read_bus_request(q2).malformed());
  const auto jq = read_one("POST /Bus.asmx HTTP/1.1\r\nHost: h\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}");
  auto jcall = read_bus_request(jq);
  ASSERT_TRUE(jcall.malformed());
  EXPECT_EQ(refusal_response(jq, jcall.reason).status, 400);
}

}  // namespace
}  // namespace nudge::pollbus
