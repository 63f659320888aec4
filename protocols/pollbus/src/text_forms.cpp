// The text forms of BaseMessage's two fields (System.Guid, System.DateTime in
// UTC), shared by both encodings.
#include <charconv>
#include <cstdio>

#include "nudge/pollbus/codec.hpp"

namespace nudge::pollbus {

namespace {

constexpr std::int64_t ms_per_day = 86'400'000;

// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
constexpr std::int64_t days_from_civil(std::int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const std::int64_t era = (y >= 0 ? y : y - 399) / 400;
  const auto yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<std::int64_t>(doe) - 719468;
}

struct civil {
  std::int64_t y;
  unsigned m, d;
};
constexpr civil civil_from_days(std::int64_t z) {
  z += 719468;
  const std::int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const auto doe = static_cast<unsigned>(z - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const std::int64_t y = static_cast<std::int64_t>(yoe) + era * 400;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  const unsigned d = doy - (153 * mp + 2) / 5 + 1;
  const unsigned m = mp < 10 ? mp + 3 : mp - 9;
  return {y + (m <= 2), m, d};
}

constexpr bool leap(std::int64_t y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }
constexpr unsigned days_in_month(std::int64_t y, unsigned m) {
  constexpr unsigned table[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return m == 2 && leap(y) ? 29 : table[m - 1];
}

// DateTime's range: 0001-01-01T00:00:00.000 .. 9999-12-31T23:59:59.999.
constexpr std::int64_t dotnet_ms_max = (days_from_civil(10000, 1, 1) - days_from_civil(1, 1, 1)) * ms_per_day - 1;

bool digits(std::string_view s, std::size_t at, std::size_t n, int& out) {
  if (at + n > s.size()) return false;
  int v = 0;
  for (std::size_t i = at; i < at + n; ++i) {
    if (s[i] < '0' || s[i] > '9') return false;
    v = v * 10 + (s[i] - '0');
  }
  out = v;
  return true;
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

std::int64_t dotnet_ms(int year, int month, int day, int hour, int minute, int second, int millis) {
  const std::int64_t days = days_from_civil(year, static_cast<unsigned>(month), static_cast<unsigned>(day)) -
                            days_from_civil(1, 1, 1);
  return days * ms_per_day + ((hour * 60LL + minute) * 60 + second) * 1000 + millis;
}

std::string guid_text(const guid& g) {
  static constexpr char hex[] = "0123456789abcdef";
  std::string out;
  out.reserve(36);
  for (std::size_t i = 0; i < g.size(); ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) out.push_back('-');
    out.push_back(hex[g[i] >> 4]);
    out.push_back(hex[g[i] & 0xf]);
  }
  return out;
}

std::optional<guid> parse_guid(std::string_view text) {
  if (text.size() == 38 && text.front() == '{' && text.back() == '}') text = text.substr(1, 36);
  if (text.size() != 36) return std::nullopt;
  guid g{};
  std::size_t byte = 0;
  for (std::size_t i = 0; i < text.size();) {
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (text[i] != '-') return std::nullopt;
      ++i;
      continue;
    }
    const int hi = hex_value(text[i]);
    const int lo = i + 1 < text.size() ? hex_value(text[i + 1]) : -1;
    if (hi < 0 || lo < 0) return std::nullopt;
    g[byte++] = static_cast<std::uint8_t>(hi << 4 | lo);
    i += 2;
  }
  return g;
}

std::string timestamp_text(std::int64_t ms) {
  if (ms < 0) ms = 0;  // clamped to DateTime's range, so the text keeps its 24 characters
  if (ms > dotnet_ms_max) ms = dotnet_ms_max;
  const std::int64_t day = ms / ms_per_day;
  const std::int64_t in_day = ms % ms_per_day;
  const civil c = civil_from_days(day + days_from_civil(1, 1, 1));
  char buf[40];
  std::snprintf(buf, sizeof buf, "%04lld-%02u-%02uT%02lld:%02lld:%02lld.%03lldZ", static_cast<long long>(c.y), c.m, c.d,
                static_cast<long long>(in_day / 3'600'000), static_cast<long long>(in_day / 60'000 % 60),
                static_cast<long long>(in_day / 1000 % 60), static_cast<long long>(in_day % 1000));
  return buf;
}

std::optional<std::int64_t> parse_timestamp(std::string_view s) {
  // xs:dateTime as .NET writes it: yyyy-MM-ddTHH:mm:ss[.f{1,7}][Z|(+|-)hh:mm]
  int year = 0, month = 0, day = 0, hour = 0, minute = 0, second = 0;
  if (s.size() < 19 || !digits(s, 0, 4, year) || s[4] != '-' || !digits(s, 5, 2, month) || s[7] != '-' ||
      !digits(s, 8, 2, day) || s[10] != 'T' || !digits(s, 11, 2, hour) || s[13] != ':' || !digits(s, 14, 2, minute) ||
      s[16] != ':' || !digits(s, 17, 2, second))
    return std::nullopt;
  if (year < 1 || month < 1 || month > 12 || day < 1 || static_cast<unsigned>(day) > days_in_month(year, static_cast<unsigned>(month)) ||
      hour > 23 || minute > 59 || second > 59)
    return std::nullopt;
  std::size_t at = 19;
  int millis = 0;
  if (at < s.size() && s[at] == '.') {
    ++at;
    std::size_t n = 0;
    while (at + n < s.size() && s[at + n] >= '0' && s[at + n] <= '9') ++n;
    if (n < 1 || n > 7) return std::nullopt;
    for (std::size_t i = 0; i < 3; ++i) millis = millis * 10 + (i < n ? s[at + i] - '0' : 0);  // sub-ms digits dropped
    at += n;
  }
  std::int64_t offset_minutes = 0;
  if (at < s.size()) {
    if (s[at] == 'Z' && at + 1 == s.size()) {
      at += 1;
    } else if ((s[at] == '+' || s[at] == '-') && at + 6 == s.size() && s[at + 3] == ':') {
      int oh = 0, om = 0;
      if (!digits(s, at + 1, 2, oh) || !digits(s, at + 4, 2, om) || oh > 14 || om > 59) return std::nullopt;
      offset_minutes = (oh * 60 + om) * (s[at] == '-' ? -1 : 1);
      at += 6;
    } else {
      return std::nullopt;
    }
  }
  const std::int64_t ms = dotnet_ms(year, month, day, hour, minute, second, millis) - offset_minutes * 60'000;
  if (ms < 0 || ms > dotnet_ms_max) return std::nullopt;
  return ms;
}

}  // namespace nudge::pollbus
