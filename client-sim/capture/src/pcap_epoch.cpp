#include <charconv>
#include <cmath>
#include <cstdio>

#include "nudge/sim/pcap_capture.hpp"

namespace nudge::sim {

namespace {

// Days from 1970-01-01 to y-m-d in the proleptic Gregorian calendar (H. Hinnant's algorithm).
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

bool number(std::string_view s, unsigned& out) {
  if (s.empty()) return false;
  const auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc{} && p == s.data() + s.size();
}

bool days_in_month_ok(std::int64_t y, unsigned m, unsigned d) {
  static constexpr unsigned days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  if (m < 1 || m > 12 || d < 1) return false;
  const bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
  return d <= days[m - 1] + (m == 2 && leap ? 1u : 0u);
}

}  // namespace

duration default_pcap_epoch() {
  return std::chrono::seconds(days_from_civil(2026, 1, 5) * 86400 + 9 * 3600);
}

std::optional<duration> parse_pcap_epoch(std::string_view text) {
  if (text.empty()) return std::nullopt;
  // Seconds since 1970.
  if (text.find('-') == std::string_view::npos) {
    double v = 0;
    const auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
    if (ec != std::errc{} || p != text.data() + text.size() || !std::isfinite(v) || v < 0 || v > 4e9)
      return std::nullopt;
    return std::chrono::duration_cast<duration>(std::chrono::duration<double>(v));
  }
  // YYYY-MM-DD[(T| )HH:MM[:SS]][Z]
  if (text.back() == 'Z') text.remove_suffix(1);
  if (text.size() < 10 || text[4] != '-' || text[7] != '-') return std::nullopt;
  unsigned y = 0, mo = 0, d = 0, h = 0, mi = 0, s = 0;
  if (!number(text.substr(0, 4), y) || !number(text.substr(5, 2), mo) || !number(text.substr(8, 2), d))
    return std::nullopt;
  if (!days_in_month_ok(y, mo, d) || y < 1970) return std::nullopt;
  if (text.size() > 10) {
    if ((text[10] != 'T' && text[10] != ' ') || text.size() < 16 || text[13] != ':') return std::nullopt;
    if (!number(text.substr(11, 2), h) || !number(text.substr(14, 2), mi)) return std::nullopt;
    if (text.size() > 16) {
      if (text.size() != 19 || text[16] != ':' || !number(text.substr(17, 2), s)) return std::nullopt;
    }
    if (h > 23 || mi > 59 || s > 59) return std::nullopt;
  }
  return std::chrono::seconds(days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + s);
}

std::string format_pcap_epoch(duration since_1970) {
  const auto secs = std::chrono::floor<std::chrono::seconds>(since_1970).count();
  std::int64_t days = secs / 86400;
  std::int64_t rem = secs % 86400;
  if (rem < 0) {
    rem += 86400;
    --days;
  }
  std::int64_t y = 0;
  unsigned m = 0, d = 0;
  civil_from_days(days, y, m, d);
  char buf[40];
  std::snprintf(buf, sizeof buf, "%04lld-%02u-%02uT%02lld:%02lld:%02lldZ", static_cast<long long>(y), m, d,
                static_cast<long long>(rem / 3600), static_cast<long long>(rem / 60 % 60),
                static_cast<long long>(rem % 60));
  return buf;
}

std::string notifier_capture_filter(const protocol::ip_endpoint& tcp, const protocol::ip_endpoint& udp) {
  return notifier_capture_filter(std::vector<protocol::ip_endpoint>{tcp}, std::vector<protocol::ip_endpoint>{udp});
}

std::string notifier_capture_filter(const std::vector<protocol::ip_endpoint>& tcp,
                                    const std::vector<protocol::ip_endpoint>& udp) {
  std::string out;
  auto side = [&](const char* proto, const protocol::ip_endpoint& e) {
    const std::string host = e.address_string(), port = std::to_string(e.port);
    if (!out.empty()) out += " or ";
    out += std::string("(") + proto + " and ((src host " + host + " and src port " + port + ") or (dst host " + host +
           " and dst port " + port + ")))";
  };
  for (const auto& e : tcp) side("tcp", e);
  for (const auto& e : udp) side("udp", e);
  return out;
}

}  // namespace nudge::sim
