#pragma once
// The EMSMDB family's reading of captured traffic (engine::capture_classifier):
// its message kinds are metrics::message_kind (bind, connect, poll, fetch, ...),
// its client modes client::client_mode (poll, push, async), named as the
// family's counters and results name them.
#include <span>
#include <string_view>

#include "nudge/engine/capture_classifier.hpp"

namespace nudge::protocol::emsmdb {

class capture_classifier final : public engine::capture_classifier {
 public:
  std::string_view family() const override { return "emsmdb"; }
  std::span<const std::string_view> kind_names() const override;
  std::span<const std::string_view> mode_names() const override;
};

/// The one instance (it holds no state).
const capture_classifier& emsmdb_capture_classifier();

}  // namespace nudge::protocol::emsmdb
