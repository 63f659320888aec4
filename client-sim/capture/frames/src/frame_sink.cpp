#include "nudge/capture/frame_sink.hpp"

namespace nudge::capture {

void memory_sink::frame(time_point t, std::span<const std::uint8_t> bytes) {
  frames_.push_back({t, std::vector<std::uint8_t>(bytes.begin(), bytes.end())});
}

}  // namespace nudge::capture
