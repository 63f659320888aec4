#pragma once
// The polling bus's reading of captured traffic (engine::capture_classifier,
// nudge-pcap --family pollbus, docs/pcap-tool.md): HTTP requests and responses
// framed per flow with nudge_http's readers, named by the family's kinds
// (register, poll, continue, http_error; the analyser counts tcp_setup and
// tcp_ack), sessions keyed by the requests' AgentId, counters named as the
// client core's, and each ChatMessage's TimeStamp as the event's creation.
// A virtual capture (client-sim --pcap) writes the bus as its cores count it:
// each send one message, a close three segments (FIN, FIN/ACK, ACK).
#include <memory>
#include <span>
#include <string_view>

#include "nudge/engine/capture_classifier.hpp"

namespace nudge::pollbus {

class capture_classifier final : public engine::capture_classifier {
 public:
  std::string_view family() const override;
  std::span<const std::string_view> kind_names() const override;
  std::span<const std::string_view> mode_names() const override;
  /// An HTTP request line ("POST ", "GET ", ...) or status line ("HTTP/1.").
  bool begins_message(protocol::bytes_view stream) const override;
  /// polls, wasted_polls, registrations, connections, received_*, http_errors.
  std::span<const std::string_view> counter_names() const override;
  /// poll: every event arrives piggybacked on a poll response.
  std::span<const std::string_view> path_names() const override;
  unsigned teardown_segments() const override { return 3; }
  std::unique_ptr<engine::capture_reader> make_reader(const engine::capture_reading_options& options) const override;
  /// Its mode (the path it polled); pollbus.client_interval from its median
  /// poll gap when the server never set one; pollbus.keep_alive false when
  /// it opened a connection per poll.
  std::optional<engine::client_rebuild> rebuild_client(const engine::captured_client_view& client) const override;
};

/// The one instance (it holds no state).
const capture_classifier& pollbus_capture_classifier();

}  // namespace nudge::pollbus
