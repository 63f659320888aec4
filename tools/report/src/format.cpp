#include "nudge/report/format.hpp"

#include <fmt/format.h>

#include <cmath>

namespace nudge::report {

std::string xml_escape(std::string_view s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      default: out += c;
    }
  }
  return out;
}

namespace {

std::string group_thousands(std::string digits) {
  // digits: optional '-', integer part, optional fraction
  std::string sign;
  if (!digits.empty() && digits[0] == '-') sign = "-", digits.erase(0, 1);
  const auto dot = digits.find('.');
  std::string whole = digits.substr(0, dot), frac = dot == std::string::npos ? "" : digits.substr(dot);
  std::string out;
  for (std::size_t i = 0; i < whole.size(); ++i) {
    if (i && (whole.size() - i) % 3 == 0) out += ',';
    out += whole[i];
  }
  return sign + out + frac;
}

}  // namespace

std::string format_count(double v) {
  if (!std::isfinite(v)) return fmt::format("{}", v);
  std::string s = group_thousands(fmt::format("{:.0f}", v));
  return s == "-0" ? "0" : s;
}

std::string format_fixed(double v, int decimals) {
  if (!std::isfinite(v)) return fmt::format("{}", v);
  std::string s = group_thousands(fmt::format("{:.{}f}", v, decimals));
  if (s.rfind("-0", 0) == 0 && s.find_first_not_of("-0.,") == std::string::npos) s.erase(0, 1);
  return s;
}

std::string format_seconds(double s) {
  if (!std::isfinite(s)) return fmt::format("{}", s);
  const double a = std::abs(s);
  if (a == 0) return "0 s";
  if (a < 1e-3) return fmt::format("{:.0f} µs", s * 1e6);
  if (a < 1) return fmt::format("{:.1f} ms", s * 1e3);
  if (a < 120) return fmt::format("{:.2f} s", s);
  if (a < 7200) return fmt::format("{:.1f} min", s / 60);
  return fmt::format("{:.1f} h", s / 3600);
}

std::string format_span(double s) {
  const auto total = static_cast<long long>(std::llround(s));
  if (total <= 0) return fmt::format("{} s", s);
  const long long h = total / 3600, m = (total % 3600) / 60, sec = total % 60;
  std::string out;
  auto part = [&](long long n, const char* unit) {
    if (!n) return;
    if (!out.empty()) out += ' ';
    out += fmt::format("{} {}", n, unit);
  };
  part(h, "h");
  part(m, "min");
  part(sec, "s");
  return out;
}

std::string format_quantity(double v, dimension d) {
  std::string s = fmt::format("{:.6g}", v);
  switch (d) {
    case dimension::time: return s + " s";
    case dimension::bytes: return s + " B";
    case dimension::none: return s;
  }
  return s;
}

std::string format_change(double fraction) {
  if (std::isnan(fraction)) return "n/a";
  if (std::isinf(fraction)) return fraction > 0 ? "+inf%" : "-inf%";
  const double pct = fraction * 100;
  if (std::abs(pct) < 0.05) return "0.0%";
  return fmt::format("{:+.1f}%", pct);
}

std::string format_value(std::optional<double> v, value_style style) {
  if (!v) return "-";
  switch (style) {
    case value_style::count: return format_count(*v);
    case value_style::rate: return format_fixed(*v, 1);
    case value_style::seconds: return format_seconds(*v);
    case value_style::percent: return fmt::format("{:.1f}%", *v * 100);
  }
  return "?";
}

}  // namespace nudge::report
