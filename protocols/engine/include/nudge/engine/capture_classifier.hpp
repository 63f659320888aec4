#pragma once
// How a protocol family reads captured traffic, behind a protocol-neutral
// face: the names of the message kinds and client modes it counts, by index.
// A capture analyser counts by these indices and prints the names it is given,
// so it keeps no list of a family's kinds or modes of its own.
#include <cstddef>
#include <span>
#include <string_view>

#include "nudge/protocol/byte_io.hpp"

namespace nudge::engine {

class capture_classifier {
 public:
  virtual ~capture_classifier() = default;
  /// The family's name, e.g. "emsmdb".
  virtual std::string_view family() const = 0;
  /// The family's message kinds, by index (the index its counters use).
  virtual std::span<const std::string_view> kind_names() const = 0;
  /// The family's client modes, by index.
  virtual std::span<const std::string_view> mode_names() const = 0;
  /// Whether `stream` (a TCP segment's payload) can begin one of the family's
  /// messages: where the analyser restarts framing after a gap.
  virtual bool begins_message(protocol::bytes_view stream) const = 0;

  std::string_view kind_name(std::size_t k) const { return k < kind_names().size() ? kind_names()[k] : "?"; }
  std::string_view mode_name(std::size_t m) const { return m < mode_names().size() ? mode_names()[m] : "?"; }
};

}  // namespace nudge::engine
