#pragma once
// ActiveSync's reading of captured traffic (nudge-pcap analyse --family
// activesync): HTTP requests and answers framed per flow with nudge_http's
// readers, named by the family's kinds (ping, ping_status1, ping_status2,
// sync, http_error; the analyser counts tcp_setup and tcp_ack), sessions
// keyed by the requests' DeviceId, counters named as the client core's, and
// each new message's DateReceived as the event's creation. A virtual capture
// writes each send as one message and a close as three segments.
#include <memory>
#include <span>
#include <string_view>

#include "nudge/engine/capture_classifier.hpp"

namespace nudge::activesync {

class capture_classifier final : public engine::capture_classifier {
 public:
  std::string_view family() const override;
  std::span<const std::string_view> kind_names() const override;
  std::span<const std::string_view> mode_names() const override;
  bool begins_message(protocol::bytes_view stream) const override;
  std::span<const std::string_view> counter_names() const override;
  std::span<const std::string_view> path_names() const override;
  unsigned teardown_segments() const override { return 3; }
  std::unique_ptr<engine::capture_reader> make_reader(const engine::capture_reading_options& options) const override;
};

const capture_classifier& activesync_capture_classifier();

}  // namespace nudge::activesync
