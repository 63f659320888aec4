#pragma once
// WBXML 1.3 as Exchange ActiveSync writes it ([MS-ASWBXML]): a small bounded
// reader and an exact writer for the tokens nudge's ActiveSync family uses
// (code page 0 AirSync, 2 Email, 13 Ping). The reader takes a whole HTTP body
// and returns the document's one root element, or malformed with a reason; it
// never reads past the body, and depth, element count and text length are
// capped. Attributes, entities, string-table references, processing
// instructions and extension tokens are refused (ActiveSync uses none).
//
// Why not libwbxml2 (Debian libwbxml2-dev, which has an ActiveSync language):
// its decoder goes through XML text (a second parser), and its libFuzzer
// target gets no coverage feedback from the uninstrumented shared library, so
// "survives its fuzz target" cannot be shown (docs/activesync.md). Its CLIs
// (`wbxml2xml -l ACTIVESYNC`, `xml2wbxml -a -n -v 1.3`) judge this codec in
// tests/protocols/activesync.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "nudge/protocol/byte_io.hpp"
#include "nudge/protocol/decode.hpp"

namespace nudge::activesync::wbxml {

using protocol::byte_buffer;
using protocol::bytes_view;
using protocol::decoded;

/// Code pages ([MS-ASWBXML] 2.1.2.1).
enum class page : std::uint8_t { airsync = 0, email = 2, ping = 13 };

/// Tokens of the code pages nudge speaks (without the content bit 0x40).
namespace ping_tag {
inline constexpr std::uint8_t ping = 0x05, autd_state = 0x06, status = 0x07, heartbeat_interval = 0x08,
                              folders = 0x09, folder = 0x0A, id = 0x0B, class_ = 0x0C, max_folders = 0x0D;
}
namespace airsync_tag {
inline constexpr std::uint8_t sync = 0x05, add = 0x07, sync_key = 0x0B, server_id = 0x0D, status = 0x0E,
                              collection = 0x0F, class_ = 0x10, collection_id = 0x12, get_changes = 0x13,
                              more_available = 0x14, window_size = 0x15, commands = 0x16, collections = 0x1C,
                              application_data = 0x1D;
}
namespace email_tag {
inline constexpr std::uint8_t date_received = 0x0F, display_to = 0x11, importance = 0x12, message_class = 0x13,
                              subject = 0x14, read = 0x15, to = 0x16, from = 0x18, thread_topic = 0x35,
                              internet_cpid = 0x39;
}

/// One element: its code page and token, inline text (STR_I or OPAQUE) and
/// children, in document order (ActiveSync never mixes the two).
struct element {
  page cp = page::ping;
  std::uint8_t token = 0;
  std::string text;
  std::vector<element> children;

  /// The first child with this page and token, or null.
  const element* child(page p, std::uint8_t t) const;
  friend bool operator==(const element&, const element&) = default;
};

/// A leaf with text, and an element with children (builders for writers).
element leaf(page p, std::uint8_t token, std::string text);
element node(page p, std::uint8_t token, std::vector<element> children = {});

struct limits {
  std::size_t max_depth = 16;
  std::size_t max_elements = 1024;
  std::size_t max_text = 4096;  // bytes of one element's text
};

/// Reads a whole WBXML document (an HTTP body): complete with the root
/// element (consumed = body size), or malformed with why. A body cut short is
/// malformed ("truncated"): the HTTP layer already delivered all of it.
decoded<element> decode(bytes_view body, const limits& l = {});

/// Writes the header (version 1.3, public id 1 "unknown", UTF-8, no string
/// table: `03 01 6A 00`, as Exchange and `xml2wbxml -a -n -v 1.3`) and the
/// element tree, starting in code page 0 and switching pages as needed.
byte_buffer encode(const element& root);

/// The element's name in its code page ("Ping", "HeartbeatInterval", ...),
/// "?" for a token nudge does not know.
std::string_view tag_name(page p, std::uint8_t token);

}  // namespace nudge::activesync::wbxml
