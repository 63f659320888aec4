#pragma once
// The polling message bus of seed 003 ("Polling Based Message Bus For ASP.NET
// Web Services"): one web method, `List<BaseMessage> Poll(BaseMessage)`. The
// client sends one message per poll and gets back every message queued for it.
// This is the message model both encodings (SOAP 1.1 as .NET's XmlSerializer
// writes it, and a JSON profile) and both cores share; the codec turns it into
// bytes (nudge/pollbus/codec.hpp), the cores never see XML or JSON.
#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace nudge::pollbus {

/// AgentId: a System.Guid, in the byte order its text form prints
/// ("3f2504e0-4f89-11d3-9a0c-0305e82c3301" is {0x3f,0x25,0x04,0xe0,...}).
using guid = std::array<std::uint8_t, 16>;

/// The BaseMessage subtypes the seed's service declares with [XmlInclude], in
/// the seed's order. The wire names are their .NET class names (xsi:type).
enum class message_type : std::uint8_t {
  empty,            // EmptyMessage: nothing to say (either direction)
  register_agent,   // RegisterMessage: ComputerName, UserInfo (client -> server)
  image_data,       // ImageDataMessage (application payload; counted, not interpreted)
  poll_mode,        // PollModeMessage: Mode ("Register" sends the client back to registering)
  poll_interval,    // PollIntervalMessage: IntervalInMilliseconds (server -> client)
  thumbsize,        // ThumbsizeMessage (application payload)
  image_no_change,  // ImageNoChangeMessage (application payload)
  chat,             // ChatMessage: Text (either direction; nudge's "something changed")
};
inline constexpr std::size_t message_type_count = 8;

/// "EmptyMessage", "RegisterMessage", ...: the xsi:type and JSON "type" value.
std::string_view wire_name(message_type t);

/// PollModeOptions of the seed's client.
enum class poll_mode : std::uint8_t { register_agent, poll };

/// One BaseMessage. Fields that a type does not carry stay empty.
struct message {
  message_type type = message_type::empty;
  guid agent_id{};
  /// TimeStamp, milliseconds since 0001-01-01T00:00:00Z as .NET's DateTime
  /// counts (UTC). A server stamps an event's message with the time the event
  /// was created, so a client measures latency end to end.
  std::int64_t timestamp_ms = 0;
  std::string computer_name;            // RegisterMessage
  std::string user_info;                // RegisterMessage
  std::int32_t interval_ms = 5000;      // PollIntervalMessage (the seed's default)
  poll_mode mode = poll_mode::poll;     // PollModeMessage
  std::string text;                     // ChatMessage
  friend bool operator==(const message&, const message&) = default;
};

}  // namespace nudge::pollbus
