#include "nudge/http/writer.hpp"

#include <array>
#include <cstdio>
#include <string>

namespace nudge::http {

namespace {
void put(byte_buffer& out, std::string_view s) { out.insert(out.end(), s.begin(), s.end()); }
std::string_view version_text(int v) { return v == http_1_0 ? "HTTP/1.0" : "HTTP/1.1"; }

void put_fields(byte_buffer& out, const fields& h) {
  for (const auto& f : h.list) {
    put(out, f.name);
    put(out, ": ");
    put(out, f.value);
    put(out, "\r\n");
  }
  put(out, "\r\n");
}

void head_to(byte_buffer& out, const request& r) {
  put(out, r.method);
  put(out, " ");
  put(out, r.target);
  put(out, " ");
  put(out, version_text(r.version));
  put(out, "\r\n");
  put_fields(out, r.headers);
}

void head_to(byte_buffer& out, const response& r) {
  put(out, version_text(r.version));
  put(out, " ");
  put(out, std::to_string(r.status));
  put(out, " ");
  put(out, r.reason);
  put(out, "\r\n");
  put_fields(out, r.headers);
}
}  // namespace

byte_buffer serialize_head(const request& r) {
  byte_buffer out;
  head_to(out, r);
  return out;
}
byte_buffer serialize_head(const response& r) {
  byte_buffer out;
  head_to(out, r);
  return out;
}
void serialize_to(byte_buffer& out, const request& r) {
  head_to(out, r);
  put(out, r.body);
}
void serialize_to(byte_buffer& out, const response& r) {
  head_to(out, r);
  put(out, r.body);
}
byte_buffer serialize(const request& r) {
  byte_buffer out;
  out.reserve(256 + r.body.size());
  serialize_to(out, r);
  return out;
}
byte_buffer serialize(const response& r) {
  byte_buffer out;
  out.reserve(256 + r.body.size());
  serialize_to(out, r);
  return out;
}

void set_content_length(request& r) { r.headers.set("Content-Length", std::to_string(r.body.size())); }
void set_content_length(response& r) { r.headers.set("Content-Length", std::to_string(r.body.size())); }

std::string_view continue_line() { return "HTTP/1.1 100 Continue\r\n\r\n"; }

response plain_response(int status, std::string_view text) {
  response r;
  r.status = status;
  r.reason = std::string(reason_phrase(status));
  r.body = std::string(text);
  r.headers.add("Content-Type", "text/plain; charset=utf-8");
  r.headers.add("Content-Length", std::to_string(r.body.size()));
  r.headers.add("Connection", "close");
  r.keep_alive = false;
  return r;
}

std::string imf_fixdate(std::int64_t unix_seconds) {
  // Civil-from-days (H. Hinnant), valid for any day count.
  static constexpr std::array<const char*, 7> days{"Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"};
  static constexpr std::array<const char*, 12> months{"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                                      "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  std::int64_t day = unix_seconds / 86400;
  std::int64_t sec = unix_seconds % 86400;
  if (sec < 0) {
    sec += 86400;
    --day;
  }
  const std::int64_t weekday = ((day % 7) + 7) % 7;
  const std::int64_t z = day + 719468;
  const std::int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const std::int64_t doe = z - era * 146097;
  const std::int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const std::int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const std::int64_t mp = (5 * doy + 2) / 153;
  const std::int64_t d = doy - (153 * mp + 2) / 5 + 1;
  const std::int64_t m = mp < 10 ? mp + 3 : mp - 9;
  const std::int64_t y = yoe + era * 400 + (m <= 2 ? 1 : 0);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%s, %02lld %s %04lld %02lld:%02lld:%02lld GMT", days[static_cast<std::size_t>(weekday)],
                static_cast<long long>(d), months[static_cast<std::size_t>(m - 1)], static_cast<long long>(y),
                static_cast<long long>(sec / 3600), static_cast<long long>(sec / 60 % 60), static_cast<long long>(sec % 60));
  return buf;
}

}  // namespace nudge::http
