#pragma once
// The poll Mono 6.8's SoapHttpClientProtocol sent from the judge client
// (reference/judges/asmx-poll-client.cs) to a loopback listener on port
// 18765: 292 bytes of head and 487 of body (wave2-protocols.md §1.1).
// The live judge test (asmx_judge_test) checks these bytes are still what
// Mono sends.
#include <string_view>

namespace nudge::pollbus::test {

inline constexpr std::string_view mono_head =
    "POST /Bus.asmx HTTP/1.1\r\n"
    "User-Agent: Mozilla/4.0 (compatible; MSIE 6.0; MS Web Services Client Protocol 4.0.30319.42000)\r\n"
    "Content-Type: text/xml; charset=utf-8\r\n"
    "SOAPAction: \"http://tempuri.org/Poll\"\r\n"
    "Content-Length: 487\r\n"
    "Expect: 100-continue\r\n"
    "Connection: keep-alive\r\n"
    "Host: 127.0.0.1:18765\r\n"
    "\r\n";

inline constexpr std::string_view mono_body =
    "<?xml version=\"1.0\" encoding=\"utf-8\"?><soap:Envelope xmlns:soap=\"http://schemas.xmlsoap.org/soap/envelope/\" "
    "xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" xmlns:xsd=\"http://www.w3.org/2001/XMLSchema\"><soap:Body>"
    "<Poll xmlns=\"http://tempuri.org/\"><message xsi:type=\"RegisterMessage\">"
    "<AgentId>3f2504e0-4f89-11d3-9a0c-0305e82c3301</AgentId><TimeStamp>2009-08-26T10:00:00Z</TimeStamp>"
    "<ComputerName>PC1</ComputerName><UserInfo>bob</UserInfo></message></Poll></soap:Body></soap:Envelope>";

}  // namespace nudge::pollbus::test
