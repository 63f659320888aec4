#include "nudge/activesync/messages.hpp"

#include <array>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <utility>

#include "nudge/http/writer.hpp"

namespace nudge::activesync {
namespace {

using wbxml::element;
using wbxml::leaf;
using wbxml::node;
using wbxml::page;
namespace pt = wbxml::ping_tag;
namespace at = wbxml::airsync_tag;
namespace et = wbxml::email_tag;

/// time_point{} in Unix seconds: 2026-01-05T09:00:00Z.
constexpr std::int64_t unix_s_at_time_zero = 1767603600;

bool parse_u32(std::string_view s, std::uint32_t& out) {
  if (s.empty() || s.size() > 10) return false;
  for (char c : s)
    if (c < '0' || c > '9') return false;
  const auto r = std::from_chars(s.data(), s.data() + s.size(), out);
  return r.ec == std::errc{} && r.ptr == s.data() + s.size();
}

bool known_class(std::string_view c) {
  for (std::string_view k : {"Email", "Calendar", "Contacts", "Tasks", "Notes"})
    if (c == k) return true;
  return false;
}

bool is(const element& e, page p, std::uint8_t t) { return e.cp == p && e.token == t; }

// Howard Hinnant's civil calendar algorithms (days since 1970-01-01).
std::int64_t days_from_civil(std::int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const std::int64_t era = (y >= 0 ? y : y - 399) / 400;
  const auto yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<std::int64_t>(doe) - 719468;
}
void civil_from_days(std::int64_t z, std::int64_t& y, unsigned& m, unsigned& d) {
  z += 719468;
  const std::int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const auto doe = static_cast<unsigned>(z - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  y = static_cast<std::int64_t>(yoe) + era * 400;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  d = doy - (153 * mp + 2) / 5 + 1;
  m = mp < 10 ? mp + 3 : mp - 9;
  y += m <= 2;
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string percent_encode(std::string_view s) {
  std::string out;
  for (unsigned char c : s) {
    if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
        c == '.' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      char buf[4];
      std::snprintf(buf, sizeof buf, "%%%02X", c);
      out += buf;
    }
  }
  return out;
}

std::string base64(std::string_view in) {
  static constexpr char table[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  std::size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    const unsigned v = (static_cast<unsigned char>(in[i]) << 16) | (static_cast<unsigned char>(in[i + 1]) << 8) |
                       static_cast<unsigned char>(in[i + 2]);
    out += table[(v >> 18) & 63];
    out += table[(v >> 12) & 63];
    out += table[(v >> 6) & 63];
    out += table[v & 63];
  }
  if (i + 1 == in.size()) {
    const unsigned v = static_cast<unsigned char>(in[i]) << 16;
    out += table[(v >> 18) & 63];
    out += table[(v >> 12) & 63];
    out += "==";
  } else if (i + 2 == in.size()) {
    const unsigned v = (static_cast<unsigned char>(in[i]) << 16) | (static_cast<unsigned char>(in[i + 1]) << 8);
    out += table[(v >> 18) & 63];
    out += table[(v >> 12) & 63];
    out += table[(v >> 6) & 63];
    out += '=';
  }
  return out;
}

/// Text without control characters (a User may hold spaces and UTF-8).
bool printable(std::string_view s, std::size_t max) {
  if (s.empty() || s.size() > max) return false;
  for (unsigned char c : s)
    if (c < 0x20 || c == 0x7F) return false;
  return true;
}

/// Simple tokens: a device id, a user, a device type (letters, digits and a few marks).
bool plain_token(std::string_view s, std::size_t max) {
  if (s.empty() || s.size() > max) return false;
  for (unsigned char c : s)
    if (c < 0x21 || c > 0x7E) return false;
  return true;
}

}  // namespace

// ---- Ping ---------------------------------------------------------------------

byte_buffer encode(const ping_request& r) {
  element root = node(page::ping, pt::ping);
  if (r.heartbeat_s) root.children.push_back(leaf(page::ping, pt::heartbeat_interval, std::to_string(*r.heartbeat_s)));
  if (r.has_folders || !r.folders.empty()) {
    element folders = node(page::ping, pt::folders);
    for (const ping_folder& f : r.folders)
      folders.children.push_back(node(page::ping, pt::folder,
                                      {leaf(page::ping, pt::id, f.id), leaf(page::ping, pt::class_, f.folder_class)}));
    root.children.push_back(std::move(folders));
  }
  return wbxml::encode(root);
}

byte_buffer encode(const ping_response& r) {
  element root = node(page::ping, pt::ping);
  root.children.push_back(leaf(page::ping, pt::status, std::to_string(static_cast<int>(r.status))));
  if (!r.folders.empty()) {
    element folders = node(page::ping, pt::folders);
    for (const std::string& id : r.folders) folders.children.push_back(leaf(page::ping, pt::folder, id));
    root.children.push_back(std::move(folders));
  }
  if (r.heartbeat_s) root.children.push_back(leaf(page::ping, pt::heartbeat_interval, std::to_string(*r.heartbeat_s)));
  if (r.max_folders) root.children.push_back(leaf(page::ping, pt::max_folders, std::to_string(*r.max_folders)));
  return wbxml::encode(root);
}

decoded<ping_request> decode_ping_request(bytes_view body) {
  using out = decoded<ping_request>;
  auto doc = wbxml::decode(body);
  if (!doc.complete()) return out::bad(doc.reason);
  const element& root = doc.value;
  if (!is(root, page::ping, pt::ping) || !root.text.empty()) return out::bad("not a Ping");
  ping_request r;
  for (const element& c : root.children) {
    if (is(c, page::ping, pt::heartbeat_interval)) {
      std::uint32_t v = 0;
      if (r.heartbeat_s || !parse_u32(c.text, v)) return out::bad("bad HeartbeatInterval");
      r.heartbeat_s = v;
    } else if (is(c, page::ping, pt::folders)) {
      if (r.has_folders || !c.text.empty()) return out::bad("bad Folders");
      r.has_folders = true;
      for (const element& f : c.children) {
        if (!is(f, page::ping, pt::folder) || !f.text.empty()) return out::bad("unexpected element in Folders");
        ping_folder folder;
        for (const element& x : f.children) {
          if (is(x, page::ping, pt::id) && folder.id.empty() && x.children.empty()) {
            if (x.text.size() > max_folder_id) return out::bad("folder Id longer than 64");
            folder.id = x.text;
          } else if (is(x, page::ping, pt::class_) && folder.folder_class.empty() && x.children.empty()) {
            if (!x.text.empty() && !known_class(x.text)) return out::bad("unknown folder Class");
            folder.folder_class = x.text;
          } else {
            return out::bad("unexpected element in Folder");
          }
        }
        r.folders.push_back(std::move(folder));
      }
    } else {
      return out::bad("unexpected element in Ping");
    }
  }
  return out::ok(std::move(r), doc.consumed);
}

decoded<ping_response> decode_ping_response(bytes_view body) {
  using out = decoded<ping_response>;
  auto doc = wbxml::decode(body);
  if (!doc.complete()) return out::bad(doc.reason);
  const element& root = doc.value;
  if (!is(root, page::ping, pt::ping)) return out::bad("not a Ping");
  ping_response r;
  bool has_status = false;
  for (const element& c : root.children) {
    std::uint32_t v = 0;
    if (is(c, page::ping, pt::status)) {
      if (!parse_u32(c.text, v) || v < 1 || v > 8) return out::bad("bad Status");
      r.status = static_cast<ping_status>(v);
      has_status = true;
    } else if (is(c, page::ping, pt::folders)) {
      for (const element& f : c.children) {
        if (!is(f, page::ping, pt::folder) || !f.children.empty() || f.text.size() > max_folder_id)
          return out::bad("bad Folder");
        r.folders.push_back(f.text);
      }
    } else if (is(c, page::ping, pt::heartbeat_interval)) {
      if (!parse_u32(c.text, v)) return out::bad("bad HeartbeatInterval");
      r.heartbeat_s = v;
    } else if (is(c, page::ping, pt::max_folders)) {
      if (!parse_u32(c.text, v)) return out::bad("bad MaxFolders");
      r.max_folders = v;
    } else {
      return out::bad("unexpected element in Ping");
    }
  }
  if (!has_status) return out::bad("Ping response without Status");
  return out::ok(std::move(r), doc.consumed);
}

// ---- Sync ---------------------------------------------------------------------

byte_buffer encode(const sync_request& r) {
  element collection = node(page::airsync, at::collection,
                            {leaf(page::airsync, at::sync_key, r.sync_key),
                             leaf(page::airsync, at::collection_id, r.collection_id), node(page::airsync, at::get_changes),
                             leaf(page::airsync, at::window_size, std::to_string(r.window_size))});
  return wbxml::encode(
      node(page::airsync, at::sync, {node(page::airsync, at::collections, {std::move(collection)})}));
}

byte_buffer encode(const sync_response& r) {
  element collection = node(page::airsync, at::collection,
                            {leaf(page::airsync, at::sync_key, r.sync_key),
                             leaf(page::airsync, at::collection_id, r.collection_id),
                             leaf(page::airsync, at::status, std::to_string(r.status))});
  if (r.more_available) collection.children.push_back(node(page::airsync, at::more_available));
  if (!r.adds.empty()) {
    element commands = node(page::airsync, at::commands);
    for (const message_header& m : r.adds) {
      element data = node(page::airsync, at::application_data,
                          {leaf(page::email, et::to, m.to), leaf(page::email, et::from, m.from),
                           leaf(page::email, et::subject, m.subject),
                           leaf(page::email, et::date_received, m.date_received),
                           leaf(page::email, et::display_to, m.display_to),
                           leaf(page::email, et::thread_topic, m.thread_topic),
                           leaf(page::email, et::importance, m.importance), leaf(page::email, et::read, m.read),
                           leaf(page::email, et::message_class, m.message_class),
                           leaf(page::email, et::internet_cpid, m.internet_cpid)});
      commands.children.push_back(
          node(page::airsync, at::add, {leaf(page::airsync, at::server_id, m.server_id), std::move(data)}));
    }
    collection.children.push_back(std::move(commands));
  }
  return wbxml::encode(
      node(page::airsync, at::sync, {node(page::airsync, at::collections, {std::move(collection)})}));
}

namespace {

/// The one Collection of a Sync document.
const element* only_collection(const element& root) {
  if (!is(root, page::airsync, at::sync) || root.children.size() != 1) return nullptr;
  const element& cs = root.children[0];
  if (!is(cs, page::airsync, at::collections) || cs.children.size() != 1) return nullptr;
  const element& c = cs.children[0];
  return is(c, page::airsync, at::collection) ? &c : nullptr;
}

}  // namespace

decoded<sync_request> decode_sync_request(bytes_view body) {
  using out = decoded<sync_request>;
  auto doc = wbxml::decode(body);
  if (!doc.complete()) return out::bad(doc.reason);
  const element* c = only_collection(doc.value);
  if (!c) return out::bad("not a Sync of one collection");
  sync_request r;
  bool key = false, id = false;
  for (const element& x : c->children) {
    if (is(x, page::airsync, at::sync_key)) {
      r.sync_key = x.text;
      key = true;
    } else if (is(x, page::airsync, at::collection_id)) {
      r.collection_id = x.text;
      id = true;
    } else if (is(x, page::airsync, at::window_size)) {
      if (!parse_u32(x.text, r.window_size) || r.window_size == 0 || r.window_size > 512)
        return out::bad("bad WindowSize");
    } else if (!is(x, page::airsync, at::get_changes) && !is(x, page::airsync, at::class_)) {
      return out::bad("unexpected element in Collection");
    }
  }
  if (!key || !id || r.collection_id.size() > max_folder_id) return out::bad("Sync without SyncKey or CollectionId");
  return out::ok(std::move(r), doc.consumed);
}

decoded<sync_response> decode_sync_response(bytes_view body) {
  using out = decoded<sync_response>;
  auto doc = wbxml::decode(body);
  if (!doc.complete()) return out::bad(doc.reason);
  const element* c = only_collection(doc.value);
  if (!c) return out::bad("not a Sync of one collection");
  sync_response r;
  for (const element& x : c->children) {
    if (is(x, page::airsync, at::sync_key)) {
      r.sync_key = x.text;
    } else if (is(x, page::airsync, at::collection_id)) {
      r.collection_id = x.text;
    } else if (is(x, page::airsync, at::status)) {
      if (!parse_u32(x.text, r.status)) return out::bad("bad Status");
    } else if (is(x, page::airsync, at::more_available)) {
      r.more_available = true;
    } else if (is(x, page::airsync, at::commands)) {
      for (const element& add : x.children) {
        if (!is(add, page::airsync, at::add)) return out::bad("unexpected command");
        message_header m;
        const element* sid = add.child(page::airsync, at::server_id);
        const element* data = add.child(page::airsync, at::application_data);
        if (!sid || !data) return out::bad("Add without ServerId or ApplicationData");
        m.server_id = sid->text;
        for (const element& f : data->children) {
          if (f.cp != page::email) return out::bad("unexpected element in ApplicationData");
          switch (f.token) {
            case et::to: m.to = f.text; break;
            case et::from: m.from = f.text; break;
            case et::subject: m.subject = f.text; break;
            case et::date_received: m.date_received = f.text; break;
            case et::display_to: m.display_to = f.text; break;
            case et::thread_topic: m.thread_topic = f.text; break;
            case et::importance: m.importance = f.text; break;
            case et::read: m.read = f.text; break;
            case et::message_class: m.message_class = f.text; break;
            case et::internet_cpid: m.internet_cpid = f.text; break;
            default: return out::bad("unexpected element in ApplicationData");
          }
        }
        r.adds.push_back(std::move(m));
      }
    } else {
      return out::bad("unexpected element in Collection");
    }
  }
  return out::ok(std::move(r), doc.consumed);
}

// ---- time stamps -----------------------------------------------------------------

std::string date_received_of(time_point t) {
  const std::int64_t ms = unix_s_at_time_zero * 1000 +
                          std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
  const std::int64_t s = ms >= 0 ? ms / 1000 : (ms - 999) / 1000;
  const std::int64_t days = s >= 0 ? s / 86400 : (s - 86399) / 86400;
  const std::int64_t sod = s - days * 86400;
  std::int64_t y = 0;
  unsigned m = 0, d = 0;
  civil_from_days(days, y, m, d);
  char buf[40];
  std::snprintf(buf, sizeof buf, "%04lld-%02u-%02uT%02lld:%02lld:%02lld.%03lldZ", static_cast<long long>(y), m, d,
                static_cast<long long>(sod / 3600), static_cast<long long>(sod / 60 % 60),
                static_cast<long long>(sod % 60), static_cast<long long>(ms - s * 1000));
  return buf;
}

std::int64_t unix_us_of_date_received(std::string_view iso) {
  // YYYY-MM-DDTHH:MM:SS.mmmZ
  if (iso.size() != 24 || iso[4] != '-' || iso[7] != '-' || iso[10] != 'T' || iso[13] != ':' || iso[16] != ':' ||
      iso[19] != '.' || iso[23] != 'Z')
    return -1;
  auto num = [&](std::size_t at, std::size_t n, std::uint32_t& v) { return parse_u32(iso.substr(at, n), v); };
  std::uint32_t y = 0, mo = 0, d = 0, h = 0, mi = 0, s = 0, ms = 0;
  if (!num(0, 4, y) || !num(5, 2, mo) || !num(8, 2, d) || !num(11, 2, h) || !num(14, 2, mi) || !num(17, 2, s) ||
      !num(20, 3, ms))
    return -1;
  if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || s > 60) return -1;
  const std::int64_t days = days_from_civil(y, mo, d);
  return ((days * 86400 + h * 3600 + mi * 60 + s) * 1000 + ms) * 1000;
}

std::optional<time_point> time_of_date_received(std::string_view iso) {
  const std::int64_t us = unix_us_of_date_received(iso);
  if (us < 0) return std::nullopt;
  return time_point{} + std::chrono::microseconds(us - unix_s_at_time_zero * 1000000);
}

// ---- HTTP ------------------------------------------------------------------------

std::string_view user_of_mailbox(std::string_view mailbox) {
  const auto cn = mailbox.rfind("/cn=");
  if (cn == std::string_view::npos || cn + 4 == mailbox.size()) return mailbox;
  return mailbox.substr(cn + 4);
}

std::optional<std::string> query_parameter(std::string_view target, std::string_view name) {
  const auto q = target.find('?');
  if (q == std::string_view::npos) return std::nullopt;
  std::string_view rest = target.substr(q + 1);
  while (!rest.empty()) {
    const auto amp = rest.find('&');
    const std::string_view pair = rest.substr(0, amp);
    rest = amp == std::string_view::npos ? std::string_view{} : rest.substr(amp + 1);
    const auto eq = pair.find('=');
    if (pair.substr(0, eq) != name) continue;
    const std::string_view raw = eq == std::string_view::npos ? std::string_view{} : pair.substr(eq + 1);
    std::string out;
    for (std::size_t i = 0; i < raw.size(); ++i) {
      if (raw[i] == '%') {
        if (i + 2 >= raw.size()) return std::nullopt;
        const int hi = hex_value(raw[i + 1]), lo = hex_value(raw[i + 2]);
        if (hi < 0 || lo < 0) return std::nullopt;
        out.push_back(static_cast<char>(hi * 16 + lo));
        i += 2;
      } else {
        out.push_back(raw[i] == '+' ? ' ' : raw[i]);
      }
    }
    return out;
  }
  return std::nullopt;
}

http::request command_request(std::string_view cmd, const device_identity& d, const byte_buffer& body) {
  http::request r;
  r.method = "POST";
  r.target = std::string(service_path) + "?Cmd=" + std::string(cmd) + "&User=" + percent_encode(d.user) +
             "&DeviceId=" + percent_encode(d.device_id) + "&DeviceType=" + percent_encode(d.device_type);
  r.headers.add("Host", d.host);
  r.headers.add("Authorization", "Basic " + base64(d.user + ":" + d.password));
  r.headers.add("MS-ASProtocolVersion", d.protocol_version);
  r.headers.add("X-MS-PolicyKey", d.policy_key);
  r.headers.add("User-Agent", d.user_agent);
  r.headers.add("Content-Type", std::string(wbxml_content_type));
  r.body.assign(body.begin(), body.end());
  http::set_content_length(r);
  return r;
}

decoded<command_call> read_command_request(const http::request& r) {
  using out = decoded<command_call>;
  const std::string_view target = r.target;
  const std::string_view path = target.substr(0, target.find('?'));
  if (!http::iequals(path, service_path)) return out::bad(not_found_reason);
  if (r.method != "POST") return out::bad("ActiveSync commands are POSTs");
  command_call c;
  auto cmd = query_parameter(target, "Cmd");
  auto user = query_parameter(target, "User");
  auto device = query_parameter(target, "DeviceId");
  auto type = query_parameter(target, "DeviceType");
  if (!cmd || !user || !device || !type) return out::bad("missing Cmd, User, DeviceId or DeviceType");
  if (!plain_token(*cmd, 32) || !printable(*user, 256) || !plain_token(*device, 32) || !plain_token(*type, 64))
    return out::bad("bad Cmd, User, DeviceId or DeviceType");
  const auto version = r.headers.find("MS-ASProtocolVersion");
  if (!version || version->empty()) return out::bad("no MS-ASProtocolVersion");
  if (!r.body.empty()) {
    const auto ct = r.headers.find("Content-Type");
    if (!ct || !http::iequals(*ct, wbxml_content_type)) return out::bad("the body is not application/vnd.ms-sync.wbxml");
  }
  c.cmd = std::move(*cmd);
  c.user = std::move(*user);
  c.device_id = std::move(*device);
  c.device_type = std::move(*type);
  c.protocol_version = std::string(*version);
  c.body = r.body;
  return out::ok(std::move(c), 0);
}

namespace {

void exchange_fields(http::response& r, time_point now, bool keep_alive) {
  const std::int64_t unix_s =
      unix_s_at_time_zero + std::chrono::duration_cast<std::chrono::seconds>(now.time_since_epoch()).count();
  r.headers.add("Cache-Control", "private");
  r.headers.add("Server", "Microsoft-IIS/7.5");
  r.headers.add("MS-Server-ActiveSync", "14.3");
  r.headers.add("X-AspNet-Version", "4.0.30319");
  r.headers.add("X-Powered-By", "ASP.NET");
  r.headers.add("Date", http::imf_fixdate(unix_s));
  if (!keep_alive) r.headers.add("Connection", "close");
}

}  // namespace

http::response wbxml_response(const byte_buffer& body, time_point now, bool keep_alive) {
  http::response r;
  r.status = 200;
  r.reason = "OK";
  exchange_fields(r, now, keep_alive);
  r.headers.add("Content-Type", std::string(wbxml_content_type));
  r.body.assign(body.begin(), body.end());
  http::set_content_length(r);
  r.keep_alive = keep_alive;
  return r;
}

http::response error_response(int status, time_point now, bool keep_alive) {
  http::response r;
  r.status = status;
  r.reason = std::string(http::reason_phrase(status));
  exchange_fields(r, now, keep_alive);
  http::set_content_length(r);
  r.keep_alive = keep_alive;
  return r;
}

}  // namespace nudge::activesync
