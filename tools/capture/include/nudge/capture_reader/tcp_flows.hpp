#pragma once
// TCP connections of a capture, reassembled per direction and cut into
// DCE/RPC PDUs (dcerpc::stream_framer): feed every TCP packet in capture order,
// then read each connection's PDUs with the time their first byte arrived.
// Out-of-order segments wait (by sequence number) until the bytes before them
// come; retransmitted bytes are dropped. A direction whose bytes do not frame
// as DCE/RPC stops being framed (tcp_flow::not_dcerpc).
#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <unordered_map>
#include <utility>
#include <vector>

#include "nudge/capture_reader/packet.hpp"
#include "nudge/protocol/byte_io.hpp"
#include "nudge/protocol/clock.hpp"
#include "nudge/protocol/dcerpc.hpp"
#include "nudge/protocol/endpoint.hpp"

namespace nudge::capture_reader {

using protocol::byte_buffer;
using protocol::ip_endpoint;

/// One whole PDU of a connection.
struct pdu_event {
  int dir = 0;  // 0: sent by tcp_flow::a, 1: by tcp_flow::b
  time_point t{};  // arrival of its first byte
  byte_buffer bytes;
};

namespace detail {
struct tcp_half {
  bool have_next = false;
  std::uint32_t next = 0;
  std::map<std::uint32_t, std::pair<byte_buffer, time_point>> later;  // out of order, by sequence number
  protocol::dcerpc::stream_framer framer;  // bytes not yet cut into PDUs
  time_point buf_start{};                  // arrival of the first of them
  bool broken = false;                     // not DCE/RPC: stop framing
};
}  // namespace detail

/// One TCP connection (a new SYN on a closed pair starts another).
struct tcp_flow {
  ip_endpoint a, b;               // a: the first packet's sender
  std::optional<int> client_dir;  // who sent the SYN
  time_point opened{};            // the SYN, else the first packet
  bool syn_seen = false;
  bool closed = false;  // FIN or RST seen
  bool not_dcerpc = false;
  std::vector<pdu_event> pdus;
  std::array<detail::tcp_half, 2> half;
};

class tcp_flows {
 public:
  /// One TCP packet (ip_proto_tcp) of the capture, in capture order.
  void add(const packet& p, const ip_endpoint& src, const ip_endpoint& dst);
  /// Every connection, in order of its first packet.
  const std::vector<std::unique_ptr<tcp_flow>>& flows() const { return flows_; }

 private:
  struct flow_key {
    ip_endpoint lo, hi;
    friend bool operator==(const flow_key&, const flow_key&) = default;
  };
  struct flow_key_hash {
    std::size_t operator()(const flow_key& k) const noexcept;
  };
  std::vector<std::unique_ptr<tcp_flow>> flows_;
  std::unordered_map<flow_key, std::size_t, flow_key_hash> live_;  // key -> index of its current flow
};

}  // namespace nudge::capture_reader
