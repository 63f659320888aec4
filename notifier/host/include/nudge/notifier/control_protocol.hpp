#pragma once
// The notifier's control protocol, sans-IO: newline-terminated text lines on
// a loopback TCP port, one reply line per request line.
//
//   EVENT <user_dn>        -> OK <event_id>
//   EVENTS <n> <user_dn>   -> OK <first_event_id> <last_event_id>   (1 <= n <= 1000000)
//   EVENT@<family> <user_dn>, EVENTS@<family> <n> <user_dn>
//                          -> the same, for that family's core only (ERR when
//                             the notifier serves no such family); without
//                             @<family> an event goes to the default family,
//                             the first core served (the notifier's EMSMDB)
//   STATS                  -> one line of JSON
//   SERVICES               -> one line of JSON: where each served family's core
//                             listens, {"<family>": {"listeners": [{"id": 0,
//                             "at": "127.0.0.1:7777"}], "sockets": [...]}, ...}
//                             (client-sim --clock real addresses every family by it)
//   QUIT                   -> OK bye, then the notifier closes the connection
//   anything else          -> ERR <reason>
//
// Verbs are case-insensitive; the DN is the rest of the line (DNs contain
// spaces) with surrounding blanks and a trailing CR removed. Requests may be
// pipelined: replies come back in order.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <variant>

namespace nudge::notifier::control {

inline constexpr std::size_t max_line = 8192;
inline constexpr std::uint64_t max_events_per_command = 1000000;

struct inject_events {
  std::string_view user_dn;  // views the parsed line
  std::uint64_t count = 1;
  bool batch = false;  // EVENTS (reply with a range) rather than EVENT
  /// From EVENT@<family>: which family's core gets the events; empty: the
  /// default family. Views the parsed line.
  std::string_view family;
};
struct query_stats {};
struct query_services {};
struct quit {};
struct bad_request {
  std::string reason;
};
using command = std::variant<inject_events, query_stats, query_services, quit, bad_request>;

/// Parses one line (without its '\n'). Never throws; malformed input becomes bad_request.
command parse_line(std::string_view line);

/// Reply lines, each ending in '\n'.
void append_ok_event(std::string& out, std::uint64_t event_id);
void append_ok_events(std::string& out, std::uint64_t first_id, std::uint64_t last_id);
void append_error(std::string& out, std::string_view reason);

/// At most 40 printable characters of untrusted text, for echoing in an error.
std::string printable_excerpt(std::string_view text);

/// Splits a byte stream into lines. Lines longer than max_line are reported
/// once as too_long and their bytes discarded up to the next '\n', so a peer
/// that never sends a newline costs at most max_line bytes of memory.
class line_reader {
 public:
  enum class status { line, none, too_long };

  void append(std::string_view bytes);
  /// The next complete line without its "\n" (and "\r\n"); the view stays
  /// valid until the next append().
  status next(std::string_view& line);
  std::size_t buffered() const { return buf_.size() - pos_; }

 private:
  std::string buf_;
  std::size_t pos_ = 0;
  bool discarding_ = false;  // inside an over-long line, waiting for its end
  bool report_too_long_ = false;
};

}  // namespace nudge::notifier::control
