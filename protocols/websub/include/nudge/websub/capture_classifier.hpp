#pragma once
// WebSub's reading of captured traffic (engine::capture_classifier,
// nudge-pcap analyse --family websub): HTTP requests and responses framed per
// flow with nudge_http's readers and named by the family's kinds (subscribe,
// verify, content, publish, http_error; the analyser counts tcp_setup and
// tcp_ack). Either side may dial: the side that writes a request is the
// requester, and the subscriber is the requester of a subscribe and the
// answerer of a verify or content request. Sessions are keyed by the
// subscriber's callback URL; each content body's created_ms is the event's
// creation. A virtual capture writes each send as one message and a close as
// three segments (FIN, FIN/ACK, ACK).
#include <memory>
#include <span>
#include <string_view>

#include "nudge/engine/capture_classifier.hpp"

namespace nudge::websub {

class capture_classifier final : public engine::capture_classifier {
 public:
  std::string_view family() const override;
  std::span<const std::string_view> kind_names() const override;
  std::span<const std::string_view> mode_names() const override;
  /// An HTTP request line ("POST ", "GET ", ...) or status line ("HTTP/1.").
  bool begins_message(protocol::bytes_view stream) const override;
  /// subscriptions, verifications, received, bad_signatures, connections, callbacks, http_errors.
  std::span<const std::string_view> counter_names() const override;
  /// callback: every event arrives in a content POST.
  std::span<const std::string_view> path_names() const override;
  unsigned teardown_segments() const override { return 3; }
  std::unique_ptr<engine::capture_reader> make_reader(const engine::capture_reading_options& options) const override;
};

/// The one instance (it holds no state).
const capture_classifier& websub_capture_classifier();

}  // namespace nudge::websub
