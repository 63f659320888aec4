#pragma once
// How the report writes numbers: one set of functions for the Markdown and HTML
// tables, the chart labels and stdout, so every place shows the same text.
#include <optional>
#include <string>
#include <string_view>

#include "nudge/report/metrics.hpp"

namespace nudge::report {

/// 12,345 (rounded to an integer).
/// &, <, > and " as entities: safe in HTML, SVG and XML text and attributes.
std::string xml_escape(std::string_view s);

std::string format_count(double v);
/// 12,708.6 (thousands separators, `decimals` places).
std::string format_fixed(double v, int decimals);
/// A latency in seconds, in a unit that suits it: "850 µs", "3.0 ms", "45.10 s", "2.0 min".
std::string format_seconds(double s);
/// A span of time for headings: "8 h", "5 min", "1 h 30 min", "30 s".
std::string format_span(double s);
/// A value of a dimension as a threshold message shows it: up to 6 significant
/// digits, then the unit ("2828.21 B", "0.003 s", "17").
std::string format_quantity(double v, dimension d);
/// A relative change: "+4.2%", "-12.0%", "0.0%", "+inf%" (from 0 to something).
std::string format_change(double fraction);
/// "-" for no data, else format_fixed/format_count/format_seconds by kind.
enum class value_style { count, rate, seconds, percent };
std::string format_value(std::optional<double> v, value_style style);

}  // namespace nudge::report
