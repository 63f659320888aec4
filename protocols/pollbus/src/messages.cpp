#include "nudge/pollbus/messages.hpp"

#include <array>

#include "nudge/pollbus/codec.hpp"

namespace nudge::pollbus {

namespace {
constexpr std::array<std::string_view, message_type_count> wire_names{
    "EmptyMessage",        "RegisterMessage",  "ImageDataMessage",     "PollModeMessage",
    "PollIntervalMessage", "ThumbsizeMessage", "ImageNoChangeMessage", "ChatMessage",
};
}  // namespace

std::string_view wire_name(message_type t) {
  const auto i = static_cast<std::size_t>(t);
  return i < wire_names.size() ? wire_names[i] : std::string_view("BaseMessage");
}

std::optional<message_type> message_type_from_wire(std::string_view name) {
  for (std::size_t i = 0; i < wire_names.size(); ++i)
    if (wire_names[i] == name) return static_cast<message_type>(i);
  return std::nullopt;
}

std::string_view encoding_name(encoding e) { return e == encoding::soap ? "soap" : "json"; }

}  // namespace nudge::pollbus
