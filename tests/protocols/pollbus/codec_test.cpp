// The bus bodies: Mono's captured request decodes and is re-encoded to the
// same bytes (but for TimeStamp's fixed milliseconds); every message type
// round-trips in both encodings; forms other writers use are accepted; bad
// XML/JSON, unknown types and missing or bad fields are refused with a reason.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "mono_capture.hpp"
#include "nudge/pollbus/codec.hpp"

namespace nudge::pollbus {
namespace {

const guid judge_agent = {0x3f, 0x25, 0x04, 0xe0, 0x4f, 0x89, 0x11, 0xd3,
                          0x9a, 0x0c, 0x03, 0x05, 0xe8, 0x2c, 0x33, 0x01};

message make(message_type t, int salt = 0) {
  message m;
  m.type = t;
  m.agent_id = judge_agent;
  m.agent_id[15] = static_cast<std::uint8_t>(salt);
  m.timestamp_ms = dotnet_ms(2026, 12, 3, 16, 41, 37, 250 + salt);
  switch (t) {
    case message_type::register_agent:
      m.computer_name = "PC-" + std::to_string(salt);
      m.user_info = "bob & <alice> \"quoted\" 'single' \r\n tab\t é€";
      break;
    case message_type::poll_interval: m.interval_ms = -7 + salt * 1000; break;
    case message_type::poll_mode: m.mode = salt % 2 ? poll_mode::poll : poll_mode::register_agent; break;
    case message_type::chat: m.text = "changed: folder " + std::to_string(salt) + " ]]> &amp;"; break;
    default: break;
  }
  return m;
}

std::vector<message> every_type() {
  std::vector<message> out;
  for (std::size_t i = 0; i < message_type_count; ++i) out.push_back(make(static_cast<message_type>(i), static_cast<int>(i)));
  return out;
}

TEST(PollbusText, GuidAndTimestampForms) {
  EXPECT_EQ(guid_text(judge_agent), "3f2504e0-4f89-11d3-9a0c-0305e82c3301");
  EXPECT_EQ(parse_guid("{3F2504E0-4F89-11D3-9A0C-0305E82C3301}"), judge_agent);
  for (const char* bad : {"", "3f2504e0-4f89-11d3-9a0c-0305e82c330", "3f2504e0x4f89-11d3-9a0c-0305e82c3301",
                          "3f2504e0-4f89-11d3-9a0c-0305e82c330g", "{3f2504e0-4f89-11d3-9a0c-0305e82c3301"})
    EXPECT_FALSE(parse_guid(bad)) << bad;

  const auto t = dotnet_ms(2009, 8, 26, 10, 0, 0);
  EXPECT_EQ(t, dotnet_ms_at_unix_epoch + 1251280800000);
  EXPECT_EQ(timestamp_text(t), "2009-08-26T10:00:00.000Z");
  EXPECT_EQ(timestamp_text(t + 1), "2009-08-26T10:00:00.001Z");
  EXPECT_EQ(timestamp_text(0), "0001-01-01T00:00:00.000Z");
  EXPECT_EQ(timestamp_text(-5).size(), 24u) << "clamped, same width";
  EXPECT_EQ(parse_timestamp("2009-08-26T10:00:00Z"), t);
  EXPECT_EQ(parse_timestamp("2009-08-26T10:00:00"), t) << "Unspecified kind is read as UTC";
  EXPECT_EQ(parse_timestamp("2009-08-26T10:00:00.1234567Z"), t + 123);
  EXPECT_EQ(parse_timestamp("2009-08-26T12:30:00.5+02:30"), t + 500);
  EXPECT_EQ(parse_timestamp("2009-08-26T07:00:00-03:00"), t);
  EXPECT_EQ(parse_timestamp("2000-02-29T00:00:00Z"), dotnet_ms(2000, 2, 29));
  for (const char* bad : {"", "2009-08-26", "2009-08-26 10:00:00Z", "2009-13-01T00:00:00Z", "2009-02-29T00:00:00Z",
                          "2009-08-26T24:00:00Z", "2009-08-26T10:00:00.Z", "2009-08-26T10:00:00.12345678Z",
                          "2009-08-26T10:00:00Zjunk", "0000-01-01T00:00:00Z", "2009-08-26T10:00:00+2:00"})
    EXPECT_FALSE(parse_timestamp(bad)) << bad;
  for (const auto& m : every_type()) EXPECT_EQ(parse_timestamp(timestamp_text(m.timestamp_ms)), m.timestamp_ms);
}

TEST(PollbusSoap, MonosRequestDecodes) {
  auto d = decode_poll_request(test::mono_body, encoding::soap);
  ASSERT_TRUE(d.complete()) << d.reason;
  EXPECT_EQ(d.consumed, 487u);
  EXPECT_EQ(d.value.type, message_type::register_agent);
  EXPECT_EQ(d.value.agent_id, judge_agent);
  EXPECT_EQ(d.value.timestamp_ms, dotnet_ms(2009, 8, 26, 10, 0, 0));
  EXPECT_EQ(d.value.computer_name, "PC1");
  EXPECT_EQ(d.value.user_info, "bob");
}

TEST(PollbusSoap, EncodingReproducesMonosBytesButForTheMilliseconds) {
  auto d = decode_poll_request(test::mono_body, encoding::soap);
  ASSERT_TRUE(d.complete());
  std::string ours = encode_poll_request(d.value, encoding::soap);
  EXPECT_EQ(ours.size(), test::mono_body.size() + 4);
  const auto at = ours.find("T10:00:00.000Z");
  ASSERT_NE(at, std::string::npos);
  ours.erase(at + 9, 4);
  EXPECT_EQ(ours, test::mono_body);
}

TEST(PollbusCodec, EveryTypeRoundTripsInBothEncodings) {
  const auto all = every_type();
  for (const encoding e : {encoding::soap, encoding::json}) {
    SCOPED_TRACE(std::string(encoding_name(e)));
    for (const auto& m : all) {
      const std::string body = encode_poll_request(m, e);
      auto d = decode_poll_request(body, e);
      ASSERT_TRUE(d.complete()) << wire_name(m.type) << ": " << d.reason << "\n" << body;
      EXPECT_EQ(d.value, m) << body;
      EXPECT_EQ(d.consumed, body.size());
    }
    for (std::size_t n : {std::size_t{0}, std::size_t{1}, all.size()}) {
      const std::vector<message> some(all.begin(), all.begin() + static_cast<std::ptrdiff_t>(n));
      const std::string body = encode_poll_response(some, e);
      auto d = decode_poll_response(body, e);
      ASSERT_TRUE(d.complete()) << d.reason << "\n" << body;
      EXPECT_EQ(d.value, some);
    }
  }
}

TEST(PollbusCodec, SizesDoNotDependOnTheTime) {
  message a = make(message_type::poll_interval);
  message b = a;
  b.timestamp_ms = dotnet_ms(1999, 1, 1);
  for (const encoding e : {encoding::soap, encoding::json})
    EXPECT_EQ(encode_poll_request(a, e).size(), encode_poll_request(b, e).size());
}

TEST(PollbusSoap, ResponseShapeIsXmlSerializers) {
  message m = make(message_type::poll_interval);
  m.interval_ms = 5000;
  const std::string body = encode_poll_response(std::vector<message>{m}, encoding::soap);
  EXPECT_NE(body.find("<soap:Body><PollResponse xmlns=\"http://tempuri.org/\"><PollResult>"
                      "<BaseMessage xsi:type=\"PollIntervalMessage\"><AgentId>"),
            std::string::npos)
      << body;
  EXPECT_NE(body.find("<IntervalInMilliseconds>5000</IntervalInMilliseconds></BaseMessage></PollResult></PollResponse>"),
            std::string::npos);
  message r = make(message_type::register_agent);
  r.computer_name.clear();
  EXPECT_NE(encode_poll_request(r, encoding::soap).find("<ComputerName />"), std::string::npos);
}

TEST(PollbusSoap, AcceptsOtherWritersForms) {
  // Another prefix, whitespace, a prefixed xsi:type, a SOAP Header, unknown
  // extra elements, a CDATA section, a 7-digit UTC time, no PollResult.
  const std::string request =
      "<?xml version=\"1.0\"?>\n<e:Envelope xmlns:e=\"http://schemas.xmlsoap.org/soap/envelope/\"\n"
      "  xmlns:i=\"http://www.w3.org/2001/XMLSchema-instance\" xmlns:t=\"http://tempuri.org/\">\n"
      "  <e:Header><x/></e:Header>\n  <e:Body>\n    <t:Poll>\n"
      "      <t:message i:type=\"t:ChatMessage\">\n        <t:AgentId> 3F2504E0-4F89-11D3-9A0C-0305E82C3301 </t:AgentId>\n"
      "        <t:Extra>ignored</t:Extra>\n        <t:TimeStamp>2009-08-26T10:00:00.0000001Z</t:TimeStamp>\n"
      "        <t:Text><![CDATA[a <b> & c]]></t:Text>\n      </t:message>\n    </t:Poll>\n  </e:Body>\n</e:Envelope>\n";
  auto d = decode_poll_request(request, encoding::soap);
  ASSERT_TRUE(d.complete()) << d.reason;
  EXPECT_EQ(d.value.type, message_type::chat);
  EXPECT_EQ(d.value.agent_id, judge_agent);
  EXPECT_EQ(d.value.text, "a <b> & c");
  const std::string empty_response =
      "<soap:Envelope xmlns:soap=\"http://schemas.xmlsoap.org/soap/envelope/\"><soap:Body>"
      "<PollResponse xmlns=\"http://tempuri.org/\" /></soap:Body></soap:Envelope>";
  auto r = decode_poll_response(empty_response, encoding::soap);
  ASSERT_TRUE(r.complete()) << r.reason;
  EXPECT_TRUE(r.value.empty());
}

struct hostile {
  const char* name;
  std::string body;
};

std::string request_with(std::string_view message_xml) {
  return "<?xml version=\"1.0\" encoding=\"utf-8\"?><soap:Envelope xmlns:soap=\"http://schemas.xmlsoap.org/soap/envelope/\" "
         "xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\"><soap:Body><Poll xmlns=\"http://tempuri.org/\">" +
         std::string(message_xml) + "</Poll></soap:Body></soap:Envelope>";
}

constexpr std::string_view base_fields =
    "<AgentId>3f2504e0-4f89-11d3-9a0c-0305e82c3301</AgentId><TimeStamp>2009-08-26T10:00:00Z</TimeStamp>";

TEST(PollbusSoap, HostileBodiesAreRefusedWithAReason) {
  const std::string good = request_with("<message xsi:type=\"EmptyMessage\">" + std::string(base_fields) + "</message>");
  ASSERT_TRUE(decode_poll_request(good, encoding::soap).complete()) << "the control case decodes";
  const std::vector<hostile> cases = {
      {"empty", ""},
      {"not XML", "hello"},
      {"truncated", good.substr(0, good.size() / 2)},
      {"unbalanced", good + "</soap:Envelope>"},
      {"no envelope", "<Poll xmlns=\"http://tempuri.org/\"/>"},
      {"envelope in another namespace",
       "<soap:Envelope xmlns:soap=\"http://www.w3.org/2003/05/soap-envelope\"><soap:Body/></soap:Envelope>"},
      {"undeclared prefix", "<soap:Envelope><soap:Body/></soap:Envelope>"},
      {"no Body", "<soap:Envelope xmlns:soap=\"http://schemas.xmlsoap.org/soap/envelope/\"/>"},
      {"another operation", "<soap:Envelope xmlns:soap=\"http://schemas.xmlsoap.org/soap/envelope/\"><soap:Body>"
                            "<Push xmlns=\"http://tempuri.org/\"/></soap:Body></soap:Envelope>"},
      {"no message", request_with("")},
      {"no xsi:type", request_with("<message>" + std::string(base_fields) + "</message>")},
      {"unknown xsi:type", request_with("<message xsi:type=\"EvilMessage\">" + std::string(base_fields) + "</message>")},
      {"type attribute outside xsi", request_with("<message type=\"EmptyMessage\">" + std::string(base_fields) + "</message>")},
      {"no AgentId", request_with("<message xsi:type=\"EmptyMessage\"><TimeStamp>2009-08-26T10:00:00Z</TimeStamp></message>")},
      {"bad AgentId", request_with("<message xsi:type=\"EmptyMessage\"><AgentId>nope</AgentId>"
                                   "<TimeStamp>2009-08-26T10:00:00Z</TimeStamp></message>")},
      {"no TimeStamp", request_with("<message xsi:type=\"EmptyMessage\"><AgentId>3f2504e0-4f89-11d3-9a0c-0305e82c3301"
                                    "</AgentId></message>")},
      {"bad TimeStamp", request_with("<message xsi:type=\"EmptyMessage\"><AgentId>3f2504e0-4f89-11d3-9a0c-0305e82c3301"
                                     "</AgentId><TimeStamp>yesterday</TimeStamp></message>")},
      {"no interval", request_with("<message xsi:type=\"PollIntervalMessage\">" + std::string(base_fields) + "</message>")},
      {"interval not an int", request_with("<message xsi:type=\"PollIntervalMessage\">" + std::string(base_fields) +
                                           "<IntervalInMilliseconds>5e3</IntervalInMilliseconds></message>")},
      {"interval overflows", request_with("<message xsi:type=\"PollIntervalMessage\">" + std::string(base_fields) +
                                          "<IntervalInMilliseconds>2147483648</IntervalInMilliseconds></message>")},
      {"bad mode", request_with("<message xsi:type=\"PollModeMessage\">" + std::string(base_fields) +
                                "<Mode>Push</Mode></message>")},
      {"a fault", encode_fault("server down", false, encoding::soap)},
  };
  for (const auto& c : cases) {
    auto d = decode_poll_request(c.body, encoding::soap);
    EXPECT_TRUE(d.malformed()) << c.name;
    EXPECT_FALSE(d.reason.empty()) << c.name;
  }
  auto unknown = decode_poll_request(cases[11].body, encoding::soap);
  EXPECT_EQ(unknown.reason, "unknown xsi:type");
}

TEST(PollbusSoap, HostileResponsesAreRefused) {
  const std::string one = encode_poll_response(std::vector<message>{make(message_type::chat)}, encoding::soap);
  std::string renamed = one;
  renamed.replace(renamed.find("xsi:type=\"ChatMessage\""), 22, "xsi:type=\"SpamMessage\"");
  std::string stranger = one;
  stranger.replace(stranger.find("<PollResult>"), 12, "<PollResult><Other/>");
  for (const auto& body : {renamed, stranger, one.substr(0, one.size() - 3), encode_poll_request(make(message_type::chat), encoding::soap),
                           encode_fault("overloaded", false, encoding::soap)})
    EXPECT_TRUE(decode_poll_response(body, encoding::soap).malformed()) << body;
}

TEST(PollbusCodec, FaultsCarryTheirReason) {
  for (const encoding e : {encoding::soap, encoding::json}) {
    const std::string body = encode_fault("bad <xml> & more", true, e);
    const auto text = decode_fault(body, e);
    ASSERT_TRUE(text.has_value()) << body;
    EXPECT_NE(text->find("bad <xml> & more"), std::string::npos) << *text;
    EXPECT_NE(text->find("Client"), std::string::npos) << *text;
    EXPECT_FALSE(decode_fault(encode_poll_response({}, e), e).has_value());
  }
}

TEST(PollbusJson, ShapeAndHostileBodies) {
  message m = make(message_type::poll_interval);
  m.interval_ms = 5000;
  EXPECT_EQ(encode_poll_request(m, encoding::json),
            "{\"message\":{\"type\":\"PollIntervalMessage\",\"AgentId\":\"3f2504e0-4f89-11d3-9a0c-0305e82c3300\","
            "\"TimeStamp\":\"2026-12-03T16:41:37.250Z\",\"IntervalInMilliseconds\":5000}}");
  const std::vector<hostile> cases = {
      {"empty", ""},
      {"not JSON", "{"},
      {"array", "[]"},
      {"no message", "{}"},
      {"message not an object", "{\"message\":3}"},
      {"no type", "{\"message\":{\"AgentId\":\"3f2504e0-4f89-11d3-9a0c-0305e82c3301\",\"TimeStamp\":\"2009-08-26T10:00:00Z\"}}"},
      {"unknown type", "{\"message\":{\"type\":\"X\",\"AgentId\":\"3f2504e0-4f89-11d3-9a0c-0305e82c3301\",\"TimeStamp\":\"2009-08-26T10:00:00Z\"}}"},
      {"AgentId a number", "{\"message\":{\"type\":\"EmptyMessage\",\"AgentId\":1,\"TimeStamp\":\"2009-08-26T10:00:00Z\"}}"},
      {"no TimeStamp", "{\"message\":{\"type\":\"EmptyMessage\",\"AgentId\":\"3f2504e0-4f89-11d3-9a0c-0305e82c3301\"}}"},
      {"interval a string", "{\"message\":{\"type\":\"PollIntervalMessage\",\"AgentId\":\"3f2504e0-4f89-11d3-9a0c-0305e82c3301\","
                            "\"TimeStamp\":\"2009-08-26T10:00:00Z\",\"IntervalInMilliseconds\":\"5\"}}"},
      {"interval too large", "{\"message\":{\"type\":\"PollIntervalMessage\",\"AgentId\":\"3f2504e0-4f89-11d3-9a0c-0305e82c3301\","
                             "\"TimeStamp\":\"2009-08-26T10:00:00Z\",\"IntervalInMilliseconds\":18446744073709551615}}"},
      {"text a number", "{\"message\":{\"type\":\"ChatMessage\",\"AgentId\":\"3f2504e0-4f89-11d3-9a0c-0305e82c3301\","
                        "\"TimeStamp\":\"2009-08-26T10:00:00Z\",\"Text\":[1]}}"},
  };
  for (const auto& c : cases) {
    auto d = decode_poll_request(c.body, encoding::json);
    EXPECT_TRUE(d.malformed()) << c.name;
    EXPECT_FALSE(d.reason.empty()) << c.name;
  }
  EXPECT_TRUE(decode_poll_response("{\"PollResult\":{}}", encoding::json).malformed());
  EXPECT_TRUE(decode_poll_response("{\"PollResult\":[{\"type\":\"Nope\"}]}", encoding::json).malformed());
}

TEST(PollbusCodec, JsonIsSmallerThanSoap) {
  const auto all = every_type();
  EXPECT_LT(encode_poll_response(all, encoding::json).size(), encode_poll_response(all, encoding::soap).size());
}

}  // namespace
}  // namespace nudge::pollbus
