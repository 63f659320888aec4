#pragma once
// The bodies of seed 003's one web method, `List<BaseMessage> Poll(BaseMessage)`,
// in two encodings:
//  - soap: SOAP 1.1 document/literal, wrapped, exactly as .NET's XmlSerializer
//    writes it (the request a Mono SoapHttpClientProtocol sends is reproduced
//    byte for byte except TimeStamp's fixed milliseconds, see below);
//  - json: a profile of the same messages for comparison
//    ({"message":{"type":"RegisterMessage",...}} / {"PollResult":[...]}).
// Encoders write text directly (exact, deterministic bytes); decoders parse
// with pugixml / nlohmann-json and refuse (malformed, with a static reason)
// bad XML or JSON, a missing envelope element, an unknown xsi:type, a missing
// or unparsable field. Decoders are bounded: they never throw.
//
// TimeStamp is written as "yyyy-MM-ddTHH:mm:ss.fffZ" (UTC, always three
// fraction digits: 24 characters), the .NET custom format of that name; .NET
// itself writes "o"-style trimmed fractions ("2009-08-26T10:00:00Z"), which
// the decoders accept along with 1-7 fraction digits and +hh:mm offsets.
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "nudge/pollbus/messages.hpp"
#include "nudge/protocol/decode.hpp"

namespace nudge::pollbus {

using protocol::decoded;

enum class encoding : std::uint8_t { soap, json };
std::string_view encoding_name(encoding e);  // "soap", "json"

/// The message type whose wire name is `name`, if any.
std::optional<message_type> message_type_from_wire(std::string_view name);

/// Text forms of the base fields.
std::string guid_text(const guid& g);                       // lowercase "xxxxxxxx-xxxx-...", 36 chars
std::optional<guid> parse_guid(std::string_view text);      // also accepts uppercase and {braces}
std::string timestamp_text(std::int64_t dotnet_ms);         // "2009-08-26T10:00:00.000Z"
std::optional<std::int64_t> parse_timestamp(std::string_view text);
/// .NET milliseconds (since 0001-01-01) of a civil UTC time; for tests and callers.
std::int64_t dotnet_ms(int year, int month, int day, int hour = 0, int minute = 0, int second = 0, int millis = 0);
/// .NET milliseconds of the Unix epoch (1970-01-01T00:00:00Z).
inline constexpr std::int64_t dotnet_ms_at_unix_epoch = 62135596800000;

/// Bodies. The request carries one message, the response any number (zero too).
std::string encode_poll_request(const message& m, encoding e);
std::string encode_poll_response(std::span<const message> messages, encoding e);
decoded<message> decode_poll_request(std::string_view body, encoding e);
decoded<std::vector<message>> decode_poll_response(std::string_view body, encoding e);

/// A refusal body: a SOAP 1.1 Fault (faultcode soap:Client or soap:Server,
/// faultstring `reason`) or, for json, {"error":"...","code":"Client"}.
std::string encode_fault(std::string_view reason, bool client_fault, encoding e);
/// A fault's text ("soap:Client: reason"), if the body is a fault.
std::optional<std::string> decode_fault(std::string_view body, encoding e);

/// The WSDL ASMX serves at `?WSDL`: service Bus, binding BusSoap, operation
/// Poll, BaseMessage and its 8 subtypes in the types section; `location` is
/// the service's address (soap:address).
std::string wsdl(std::string_view location);

}  // namespace nudge::pollbus
