#include "nudge/emsmdb/capture_classifier.hpp"

#include <array>
#include <cstring>

#include "nudge/protocol/dcerpc.hpp"
#include "nudge/protocol/identifiers.hpp"

namespace nudge::protocol::emsmdb {

namespace {

template <std::size_t N, class Enum, class Name>
std::array<std::string_view, N> names_of(Name name) {
  std::array<std::string_view, N> out{};
  for (std::size_t i = 0; i < N; ++i) out[i] = name(static_cast<Enum>(i));
  return out;
}

// PDU types (DCE 1.1 RPC, connection-oriented) the rules below name beyond dcerpc::packet_type.
constexpr std::uint8_t alter_context = 14;
constexpr std::uint8_t alter_context_resp = 15;
constexpr std::uint8_t auth3 = 16;
constexpr std::uint8_t cancel = 18;
constexpr std::uint8_t orphaned = 19;

constexpr std::uint8_t type(dcerpc::packet_type t) { return static_cast<std::uint8_t>(t); }

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

bool capture_classifier::begins_message(bytes_view stream) const { return dcerpc::plausible_common_header(stream); }

std::size_t capture_classifier::sent_message_length(bytes_view send) const {
  const auto h = dcerpc::decode_common_header(send);
  if (h.complete() && h.value.frag_length >= dcerpc::common_header_size && h.value.frag_length <= send.size())
    return h.value.frag_length;
  return send.size();
}

capture_classifier::interface capture_classifier::interface_of_bind(bytes_view pdu) {
  // bind: common header, max_xmit, max_recv, assoc_group, n_context (+3 pad), then the
  // first context: id (2), n_transfer (1), pad (1), abstract syntax uuid (16) + version.
  if (pdu.size() < 52 || pdu[24] == 0) return interface::unknown;
  static const auto emsmdb_uuid = protocol::emsmdb_syntax().uuid.bytes;
  static const auto async_uuid = protocol::async_emsmdb_syntax().uuid.bytes;
  const std::uint8_t* u = pdu.data() + 32;
  if (std::memcmp(u, emsmdb_uuid.data(), 16) == 0) return interface::emsmdb;
  if (std::memcmp(u, async_uuid.data(), 16) == 0) return interface::async_emsmdb;
  return interface::other;
}

std::string_view capture_classifier::name(interface i) {
  switch (i) {
    case interface::emsmdb: return "emsmdb";
    case interface::async_emsmdb: return "async_emsmdb";
    case interface::other: return "other";
    case interface::unknown: break;
  }
  return "unknown";
}

bool capture_classifier::sent_by_client(std::uint8_t pdu_type) {
  return pdu_type == type(dcerpc::packet_type::request) || pdu_type == type(dcerpc::packet_type::bind) ||
         pdu_type == alter_context || pdu_type == auth3 || pdu_type == cancel || pdu_type == orphaned;
}

std::optional<message_kind> capture_classifier::kind_of_pdu_type(std::uint8_t pdu_type) {
  switch (pdu_type) {
    case type(dcerpc::packet_type::bind):
    case type(dcerpc::packet_type::bind_ack):
    case alter_context:
    case alter_context_resp:
    case auth3: return message_kind::bind;
    case type(dcerpc::packet_type::bind_nak):
    case type(dcerpc::packet_type::fault): return message_kind::fault;
    default: return std::nullopt;
  }
}

client::client_mode capture_classifier::mode_of(bool async_seen, bool registered) {
  if (async_seen) return client::client_mode::async;
  if (registered) return client::client_mode::push;
  return client::client_mode::poll;
}

const capture_classifier& emsmdb_capture_classifier() {
  static const capture_classifier instance;
  return instance;
}

}  // namespace nudge::protocol::emsmdb
