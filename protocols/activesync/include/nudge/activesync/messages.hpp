#pragma once
// The ActiveSync commands nudge speaks, as values, and their WBXML bodies
// ([MS-ASCMD] Ping 2.2.1.13, Sync 2.2.1.21), plus the MS-ASHTTP binding:
// `POST /Microsoft-Server-ActiveSync?Cmd=...&User=...&DeviceId=...&DeviceType=...`
// with `Content-Type: application/vnd.ms-sync.wbxml`, MS-ASProtocolVersion,
// X-MS-PolicyKey, User-Agent and Authorization. Sans-IO.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "nudge/activesync/wbxml.hpp"
#include "nudge/http/message.hpp"
#include "nudge/protocol/byte_io.hpp"
#include "nudge/protocol/clock.hpp"
#include "nudge/protocol/decode.hpp"

namespace nudge::activesync {

using protocol::byte_buffer;
using protocol::bytes_view;
using protocol::decoded;

/// Ping Status values ([MS-ASCMD] 2.2.3.177.11).
enum class ping_status : std::uint8_t {
  expired = 1,            // the heartbeat passed with no change
  changes = 2,            // the listed folders changed: Sync them
  missing_parameters = 3,
  syntax_error = 4,
  heartbeat_out_of_range = 5,  // the response carries the bound
  too_many_folders = 6,        // the response carries MaxFolders
  folder_sync_required = 7,
  server_error = 8,
};

struct ping_folder {
  std::string id;
  std::string folder_class;  // Email, Calendar, Contacts, Tasks or Notes
  friend bool operator==(const ping_folder&, const ping_folder&) = default;
};

struct ping_request {
  std::optional<std::uint32_t> heartbeat_s;  // HeartbeatInterval, seconds
  bool has_folders = false;                  // a Folders element was there
  std::vector<ping_folder> folders;
  friend bool operator==(const ping_request&, const ping_request&) = default;
};

struct ping_response {
  ping_status status = ping_status::expired;
  std::vector<std::string> folders;          // with Status 2
  std::optional<std::uint32_t> heartbeat_s;  // with Status 5: the bound
  std::optional<std::uint32_t> max_folders;  // with Status 6
  friend bool operator==(const ping_response&, const ping_response&) = default;
};

/// Longest folder Id the schema allows.
inline constexpr std::size_t max_folder_id = 64;

byte_buffer encode(const ping_request& r);
byte_buffer encode(const ping_response& r);
/// A Ping request body: malformed (the server's Status 4) when it is not
/// WBXML, not a Ping, has an unknown element, a bad number, an Id over 64
/// bytes or an unknown Class. A Folder without Id or Class keeps them empty:
/// the server answers that with Status 3 (missing parameters).
decoded<ping_request> decode_ping_request(bytes_view body);
decoded<ping_response> decode_ping_response(bytes_view body);

/// A new message's header as Sync delivers it (Email code page).
struct message_header {
  std::string server_id;
  std::string to, from, subject, display_to, thread_topic;
  std::string date_received;  // ISO 8601 with milliseconds: the event's creation
  std::string importance = "1";
  std::string read = "0";
  std::string message_class = "IPM.Note";
  std::string internet_cpid = "65001";
  friend bool operator==(const message_header&, const message_header&) = default;
};

struct sync_request {
  std::string sync_key;
  std::string collection_id;
  std::uint32_t window_size = 25;
  friend bool operator==(const sync_request&, const sync_request&) = default;
};

struct sync_response {
  std::string sync_key;
  std::string collection_id;
  std::uint32_t status = 1;
  bool more_available = false;
  std::vector<message_header> adds;
  friend bool operator==(const sync_response&, const sync_response&) = default;
};

byte_buffer encode(const sync_request& r);
byte_buffer encode(const sync_response& r);
decoded<sync_request> decode_sync_request(bytes_view body);
decoded<sync_response> decode_sync_response(bytes_view body);

// ---- time stamps -------------------------------------------------------------

/// DateReceived of an event created at `t`: "2026-01-05T09:00:00.000Z" is
/// time_point{} (where a virtual capture's time zero lands by default, as the
/// polling bus's TimeStamps), so a client measures latency as now − it.
std::string date_received_of(time_point t);
/// The time_point of a DateReceived; nothing when it is not of that form.
std::optional<time_point> time_of_date_received(std::string_view iso);
/// Microseconds since 1970-01-01 of a DateReceived (captures); -1 when unreadable.
std::int64_t unix_us_of_date_received(std::string_view iso);

// ---- the HTTP binding (MS-ASHTTP) ----------------------------------------------

inline constexpr std::string_view service_path = "/Microsoft-Server-ActiveSync";
inline constexpr std::string_view wbxml_content_type = "application/vnd.ms-sync.wbxml";

/// Who a request comes from, and the fields a device sends with every command.
struct device_identity {
  std::string host;
  std::string user;
  std::string password = "nudge";
  std::string device_id;
  std::string device_type = "iPhone";
  std::string protocol_version = "14.1";
  std::string policy_key = "3942919513";
  std::string user_agent = "Apple-iPhone5C1/1202.466";
};

/// The ActiveSync user of a nudge mailbox: the last `cn=` of an Exchange DN
/// ("/o=nudge/.../cn=Recipients/cn=user000042" is "user000042"), else the name
/// itself. The client sends it as User; the server files events by it.
std::string_view user_of_mailbox(std::string_view mailbox);

/// `POST /Microsoft-Server-ActiveSync?Cmd=<cmd>&User=...&DeviceId=...&DeviceType=...`
/// with the MS-ASHTTP fields and `body`.
http::request command_request(std::string_view cmd, const device_identity& d, const byte_buffer& body);

/// A command as the server reads it.
struct command_call {
  std::string cmd, user, device_id, device_type;
  std::string protocol_version;
  std::string body;
};
/// Reads a request's target, query and fields: malformed (HTTP 400) when the
/// path is not the service (reason "not found": 404), the method is not POST,
/// Cmd, User, DeviceId or DeviceType is missing or bad, MS-ASProtocolVersion is
/// missing, or a body comes without the WBXML content type.
decoded<command_call> read_command_request(const http::request& r);
/// The reason read_command_request gives for a path that is not the service.
inline constexpr std::string_view not_found_reason = "not the ActiveSync service";

/// A 200 answer with a WBXML body, as Exchange sends it (Cache-Control,
/// Content-Type, Server, MS-Server-ActiveSync, Date of `now`, Content-Length).
http::response wbxml_response(const byte_buffer& body, time_point now, bool keep_alive);
/// An HTTP error answer (400, 404, 500, 503) with no body.
http::response error_response(int status, time_point now, bool keep_alive);

/// The value of query parameter `name` in a target, percent-decoded; nothing
/// when absent or badly encoded.
std::optional<std::string> query_parameter(std::string_view target, std::string_view name);

}  // namespace nudge::activesync
