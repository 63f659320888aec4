#include "nudge/notifier/control_protocol.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <utility>

namespace nudge::notifier::control {

namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

/// Splits off the first blank-separated word.
std::string_view next_word(std::string_view& rest) {
  rest = trim(rest);
  const auto end = rest.find_first_of(" \t");
  std::string_view word = rest.substr(0, end);
  rest = end == std::string_view::npos ? std::string_view{} : trim(rest.substr(end));
  return word;
}

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::toupper(static_cast<unsigned char>(x)) == std::toupper(static_cast<unsigned char>(y));
         });
}

bool has_control_chars(std::string_view s) {
  return std::any_of(s.begin(), s.end(), [](char c) {
    const auto u = static_cast<unsigned char>(c);
    return u < 0x20 || u == 0x7F;
  });
}

constexpr std::size_t max_dn = 1024;
constexpr std::size_t max_family = 64;

std::string check_dn(std::string_view verb, std::string_view dn) {
  if (dn.empty()) return std::string(verb) + " needs a user DN";
  if (dn.size() > max_dn) return "user DN longer than " + std::to_string(max_dn) + " bytes";
  if (has_control_chars(dn)) return "user DN contains control characters";
  return {};
}

}  // namespace

std::string printable_excerpt(std::string_view text) {
  std::string out;
  for (char c : text.substr(0, 40)) {
    const auto u = static_cast<unsigned char>(c);
    out.push_back(u >= 0x20 && u < 0x7F ? c : '?');
  }
  if (text.size() > 40) out += "...";
  return out;
}

namespace {

/// "EVENT@toy" -> ("EVENT", "toy"); a verb without '@' names no family.
std::pair<std::string_view, std::string_view> split_family(std::string_view verb) {
  const auto at = verb.find('@');
  if (at == std::string_view::npos) return {verb, {}};
  return {verb.substr(0, at), verb.substr(at + 1)};
}

}  // namespace

command parse_line(std::string_view line) {
  std::string_view rest = line;
  const std::string_view word = next_word(rest);
  if (word.empty()) return bad_request{"empty line"};
  const auto [verb, family] = split_family(word);
  const bool names_family = verb.size() != word.size();
  if (names_family && (iequals(verb, "EVENT") || iequals(verb, "EVENTS"))) {
    if (family.empty()) return bad_request{std::string(verb) + "@ needs a family name after '@'"};
    if (family.size() > max_family || has_control_chars(family) || family.find('@') != std::string_view::npos)
      return bad_request{"not a family name: '" + printable_excerpt(family) + "'"};
  }
  if (iequals(verb, "EVENT")) {
    if (auto why = check_dn("EVENT", rest); !why.empty()) return bad_request{std::move(why)};
    return inject_events{rest, 1, false, family};
  }
  if (iequals(verb, "EVENTS")) {
    const std::string_view count_text = next_word(rest);
    std::uint64_t n = 0;
    const auto [ptr, ec] = std::from_chars(count_text.data(), count_text.data() + count_text.size(), n);
    if (count_text.empty() || ec != std::errc{} || ptr != count_text.data() + count_text.size() || n == 0 ||
        n > max_events_per_command)
      return bad_request{"EVENTS needs a count from 1 to " + std::to_string(max_events_per_command) +
                         " before the user DN, got '" + printable_excerpt(count_text) + "'"};
    if (auto why = check_dn("EVENTS", rest); !why.empty()) return bad_request{std::move(why)};
    return inject_events{rest, n, true, family};
  }
  if (names_family) {
    // Only the event verbs take a family; "STATS@x" is a typo, not STATS.
    return bad_request{"unknown command '" + printable_excerpt(word) +
                       "' (only EVENT and EVENTS take @<family>)"};
  }
  if (iequals(verb, "STATS")) {
    if (!rest.empty()) return bad_request{"STATS takes no argument"};
    return query_stats{};
  }
  if (iequals(verb, "SERVICES")) {
    if (!rest.empty()) return bad_request{"SERVICES takes no argument"};
    return query_services{};
  }
  if (iequals(verb, "QUIT")) {
    if (!rest.empty()) return bad_request{"QUIT takes no argument"};
    return quit{};
  }
  return bad_request{"unknown command '" + printable_excerpt(verb) + "' (expected EVENT, EVENTS, STATS, SERVICES or QUIT)"};
}

void append_ok_event(std::string& out, std::uint64_t event_id) {
  out += "OK ";
  out += std::to_string(event_id);
  out += '\n';
}

void append_ok_events(std::string& out, std::uint64_t first_id, std::uint64_t last_id) {
  out += "OK ";
  out += std::to_string(first_id);
  out += ' ';
  out += std::to_string(last_id);
  out += '\n';
}

void append_error(std::string& out, std::string_view reason) {
  out += "ERR ";
  out += reason;
  out += '\n';
}

void line_reader::append(std::string_view bytes) {
  if (pos_ > 0) {  // drop consumed lines before growing
    buf_.erase(0, pos_);
    pos_ = 0;
  }
  while (discarding_ && !bytes.empty()) {
    const auto nl = bytes.find('\n');
    if (nl == std::string_view::npos) return;  // still inside the over-long line
    bytes.remove_prefix(nl + 1);
    discarding_ = false;
  }
  buf_.append(bytes);
  if (buf_.size() > max_line && buf_.find('\n') == std::string::npos) {
    buf_.clear();
    discarding_ = true;
    report_too_long_ = true;
  }
}

line_reader::status line_reader::next(std::string_view& line) {
  if (report_too_long_) {
    report_too_long_ = false;
    return status::too_long;
  }
  const auto nl = buf_.find('\n', pos_);
  if (nl == std::string::npos) {
    // An unfinished line may not grow past max_line: beyond it, discard to its end.
    if (buf_.size() - pos_ > max_line) {
      buf_.clear();
      pos_ = 0;
      discarding_ = true;
      return status::too_long;
    }
    return status::none;
  }
  std::string_view l(buf_.data() + pos_, nl - pos_);
  pos_ = nl + 1;
  if (l.size() > max_line) return status::too_long;
  if (!l.empty() && l.back() == '\r') l.remove_suffix(1);
  line = l;
  return status::line;
}

}  // namespace nudge::notifier::control
