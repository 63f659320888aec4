#pragma once
// The EMSMDB family's reading of captured traffic (engine::capture_classifier):
// its message kinds are metrics::message_kind (bind, connect, poll, fetch, ...),
// its client modes client::client_mode (poll, push, async), named as the
// family's counters and results name them; and the rules that tell from a
// DCE/RPC PDU alone which side sent it, which interface a bind asks for and
// which kind a bind or fault counts as; and the per-capture reader that
// applies every rule of docs/pcap-tool.md (what is a poll, a fetch, a ping).
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string_view>

#include "nudge/client/client_session.hpp"
#include "nudge/emsmdb/family.hpp"
#include "nudge/engine/capture_classifier.hpp"
#include "nudge/protocol/byte_io.hpp"

namespace nudge::protocol::emsmdb {

class capture_classifier final : public engine::capture_classifier {
 public:
  std::string_view family() const override { return "emsmdb"; }
  std::span<const std::string_view> kind_names() const override;
  std::span<const std::string_view> mode_names() const override;
  /// A plausible DCE/RPC common header (connection-oriented, version 5.0).
  bool begins_message(bytes_view stream) const override;
  /// polls, wasted_polls, fetches, ..., fetches_by_trigger.{ping,async_wait,pending}, events.
  std::span<const std::string_view> counter_names() const override;
  /// polls_max_ms (pcmsPollsMax from EcDoConnectEx), session_index.
  std::span<const std::string_view> fact_names() const override;
  /// ping_to_fetch, async_to_fetch: trigger -> the EcDoRpcExt2 that followed.
  std::span<const std::string_view> latency_names() const override;
  /// poll, push, async: what made the client fetch an event.
  std::span<const std::string_view> path_names() const override;
  /// One DCE/RPC PDU (its frag_length): the cores count each PDU of a send
  /// (a fragmented response's fragments) as its own message.
  std::size_t sent_message_length(bytes_view send) const override;
  /// The reading of one capture: DCE/RPC framing, EMSMDB calls and their
  /// sessions, pings matched to registered contexts (src/capture_reader.cpp).
  std::unique_ptr<engine::capture_reader> make_reader(const engine::capture_reading_options& options) const override;
  /// Its mode; poll.interval from its median poll gap ("0", the server's
  /// pcmsPollsMax, when the gap is within a tenth of it); push.cookie when it
  /// sent cookies.
  std::optional<engine::client_rebuild> rebuild_client(const engine::captured_client_view& client) const override;

  /// The interface a connection's bind (or alter_context) asks for.
  enum class interface : std::uint8_t { unknown, emsmdb, async_emsmdb, other };
  /// From a bind or alter_context PDU's first presentation context; unknown
  /// when the PDU is too short or offers no context.
  static interface interface_of_bind(bytes_view pdu);
  /// "emsmdb", "async_emsmdb", "other", "unknown": a flow's interface in reports.
  static std::string_view name(interface i);

  /// Whether a PDU of this type is sent by the client (request, bind,
  /// alter_context, auth3, cancel, orphaned): who connected, when the capture
  /// missed the SYN.
  static bool sent_by_client(std::uint8_t pdu_type);
  /// The kind a PDU counts as when its type alone decides it (binds and their
  /// answers: bind; bind_nak and fault: fault); empty for requests, responses
  /// (their call decides) and types nudge has no kind for.
  static std::optional<message_kind> kind_of_pdu_type(std::uint8_t pdu_type);

  /// A captured client's mode from what it was seen doing: an async wait or
  /// async connect makes it async, else a push registration push, else poll.
  static client::client_mode mode_of(bool async_seen, bool registered);
};

/// The one instance (it holds no state).
const capture_classifier& emsmdb_capture_classifier();

}  // namespace nudge::protocol::emsmdb
