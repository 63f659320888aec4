#pragma once
// Where synthesized frames go. The synthesizer does no I/O; a sink decides
// whether frames land in a pcap file, in memory (tests) or in a callback.
#include <cstdint>
#include <functional>
#include <span>
#include <utility>
#include <vector>

#include "nudge/protocol/clock.hpp"

namespace nudge::capture {

class frame_sink {
 public:
  virtual ~frame_sink() = default;
  /// One complete Ethernet II frame: 14-byte header + IP packet, no FCS and no
  /// padding to 60 bytes (as a capture on the sending host shows it). `bytes`
  /// is only valid during the call.
  virtual void frame(time_point t, std::span<const std::uint8_t> bytes) = 0;

 protected:
  frame_sink() = default;
  frame_sink(const frame_sink&) = default;
  frame_sink& operator=(const frame_sink&) = default;
};

struct captured_frame {
  time_point time{};
  std::vector<std::uint8_t> bytes;
};

/// Keeps every frame in memory, for tests and for post-processing.
class memory_sink final : public frame_sink {
 public:
  void frame(time_point t, std::span<const std::uint8_t> bytes) override;
  const std::vector<captured_frame>& frames() const { return frames_; }
  void clear() { frames_.clear(); }

 private:
  std::vector<captured_frame> frames_;
};

/// Forwards every frame to a callable.
class function_sink final : public frame_sink {
 public:
  using callback = std::function<void(time_point, std::span<const std::uint8_t>)>;
  explicit function_sink(callback cb) : cb_(std::move(cb)) {}
  void frame(time_point t, std::span<const std::uint8_t> bytes) override {
    if (cb_) cb_(t, bytes);
  }

 private:
  callback cb_;
};

/// Hands every frame to two sinks (e.g. a pcap file and a memory_sink for checks).
/// Both sinks must outlive the tee.
class tee_sink final : public frame_sink {
 public:
  tee_sink(frame_sink& first, frame_sink& second) : first_(&first), second_(&second) {}
  void frame(time_point t, std::span<const std::uint8_t> bytes) override {
    first_->frame(t, bytes);
    second_->frame(t, bytes);
  }

 private:
  frame_sink* first_;
  frame_sink* second_;
};

}  // namespace nudge::capture
