// WebSub's capture reader (nudge/websub/capture_classifier.hpp).
#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "nudge/http/reader.hpp"
#include "nudge/websub/capture_classifier.hpp"
#include "nudge/websub/family.hpp"
#include "nudge/websub/form.hpp"

namespace nudge::websub {
namespace {

constexpr std::array<std::string_view, message_kind_count> kind_list = {"tcp_setup", "tcp_ack", "subscribe", "verify",
                                                                         "content",   "publish", "http_error"};
constexpr std::array<std::string_view, 1> mode_list = {"subscriber"};
constexpr std::array<std::string_view, 1> path_list = {"callback"};

}  // namespace

std::string_view capture_classifier::family() const { return family_name; }
std::span<const std::string_view> capture_classifier::kind_names() const { return kind_list; }
std::span<const std::string_view> capture_classifier::mode_names() const { return mode_list; }
std::span<const std::string_view> capture_classifier::counter_names() const { return {}; }
std::span<const std::string_view> capture_classifier::path_names() const { return path_list; }

bool capture_classifier::begins_message(protocol::bytes_view stream) const {
  const std::string_view s(reinterpret_cast<const char*>(stream.data()), std::min<std::size_t>(stream.size(), 8));
  for (const std::string_view start : {"GET ", "POST ", "HEAD ", "PUT ", "DELETE ", "OPTIONS ", "HTTP/1."})
    if (s.substr(0, start.size()) == start.substr(0, s.size()) && !s.empty()) return true;
  return false;
}

std::unique_ptr<engine::capture_reader> capture_classifier::make_reader(const engine::capture_reading_options&) const {
  return nullptr;
}

const capture_classifier& websub_capture_classifier() {
  static const capture_classifier instance;
  return instance;
}

}  // namespace nudge::websub
