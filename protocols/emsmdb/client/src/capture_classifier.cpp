#include "nudge/emsmdb/capture_classifier.hpp"

#include <array>

#include "nudge/client/client_session.hpp"
#include "nudge/emsmdb/family.hpp"

namespace nudge::protocol::emsmdb {

namespace {

template <std::size_t N, class Enum, class Name>
std::array<std::string_view, N> names_of(Name name) {
  std::array<std::string_view, N> out{};
  for (std::size_t i = 0; i < N; ++i) out[i] = name(static_cast<Enum>(i));
  return out;
}

}  // namespace

std::span<const std::string_view> capture_classifier::kind_names() const {
  static const auto names = names_of<message_kind_count, message_kind>([](message_kind k) { return to_string(k); });
  return names;
}

std::span<const std::string_view> capture_classifier::mode_names() const {
  static const auto names = names_of<client::client_mode_count, client::client_mode>(
      [](client::client_mode m) { return client::to_string(m); });
  return names;
}

const capture_classifier& emsmdb_capture_classifier() {
  static const capture_classifier instance;
  return instance;
}

}  // namespace nudge::protocol::emsmdb
