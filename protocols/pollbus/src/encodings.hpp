#pragma once
// Namespaces and the envelope text of the SOAP encoding (private to the library).
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "nudge/pollbus/codec.hpp"

namespace nudge::pollbus {

namespace soap_names {
inline constexpr std::string_view soap_env_ns = "http://schemas.xmlsoap.org/soap/envelope/";
inline constexpr std::string_view xsi_ns = "http://www.w3.org/2001/XMLSchema-instance";
inline constexpr std::string_view tempuri_ns = "http://tempuri.org/";
// XmlSerializer's prologue and envelope, byte for byte as Mono 6.8 sends them.
inline constexpr std::string_view envelope_open =
    "<?xml version=\"1.0\" encoding=\"utf-8\"?>"
    "<soap:Envelope xmlns:soap=\"http://schemas.xmlsoap.org/soap/envelope/\" "
    "xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" xmlns:xsd=\"http://www.w3.org/2001/XMLSchema\">"
    "<soap:Body>";
inline constexpr std::string_view envelope_close = "</soap:Body></soap:Envelope>";
}  // namespace soap_names

namespace soap {
std::string encode_request(const message& m);
std::string encode_response(std::span<const message> messages);
decoded<message> decode_request(std::string_view body);
decoded<std::vector<message>> decode_response(std::string_view body);
std::string encode_fault(std::string_view reason, bool client_fault);
std::optional<std::string> decode_fault(std::string_view body);
}  // namespace soap

namespace json {
std::string encode_request(const message& m);
std::string encode_response(std::span<const message> messages);
decoded<message> decode_request(std::string_view body);
decoded<std::vector<message>> decode_response(std::string_view body);
std::string encode_fault(std::string_view reason, bool client_fault);
std::optional<std::string> decode_fault(std::string_view body);
}  // namespace json

}  // namespace nudge::pollbus
