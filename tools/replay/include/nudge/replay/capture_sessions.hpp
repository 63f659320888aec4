#pragma once
// Finding the client sessions in a capture (pcap or pcapng, read with
// libpcap): TCP is reassembled per direction, DCE/RPC PDUs are cut from each
// stream and decoded with nudge::protocol, and each client becomes a script of
// operations with their offsets from the capture's time zero:
//
//   * an EMSMDB connection (its bind names EMSMDB v0.81) with an EcDoConnectEx
//     is a client: its user DN, and every call on it (bind, EcDoConnectEx,
//     EcRRegisterPushNotification, EcDoRpcExt2, EcDummyRpc, EcDoAsyncConnectEx,
//     others kept verbatim);
//   * an AsyncEMSMDB connection belongs to the client whose EcDoAsyncConnectEx
//     response returned the ACXH its EcDoAsyncWaitEx carries;
//   * a UDP reachability cookie ("NUDGEVFY" | hNotification | context) belongs
//     to the client whose registration returned that hNotification; a datagram
//     whose payload is a client's registered context is a ping to it.
//
// Connections without their bind (a capture that started late) and EMSMDB
// connections without EcDoConnectEx cannot be replayed: they are listed in
// capture_summary::skipped. IPv4 only; Ethernet, Linux cooked (v1, v2), BSD
// loopback and raw IP link types.
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "nudge/protocol/byte_io.hpp"
#include "nudge/protocol/clock.hpp"
#include "nudge/protocol/endpoint.hpp"

namespace nudge::replay {

/// What a client does, as the replay counts and names it.
enum class op_kind : std::uint8_t {
  bind,           // DCE/RPC bind (the lane says which interface)
  connect,        // EcDoConnectEx (EMSMDB opnum 10)
  register_push,  // EcRRegisterPushNotification (opnum 4)
  rpc_ext2,       // EcDoRpcExt2 (opnum 11): a poll or a fetch, alike on the wire
  dummy,          // EcDummyRpc (opnum 6)
  async_connect,  // EcDoAsyncConnectEx (opnum 14)
  async_wait,     // EcDoAsyncWaitEx (AsyncEMSMDB opnum 0)
  other,          // any other request, replayed verbatim
  cookie,         // nudge's UDP reachability cookie / keepalive
};

/// Where an operation goes: the EMSMDB connection, the AsyncEMSMDB one, or UDP.
enum class lane : std::uint8_t { main, async, udp };
inline constexpr std::size_t lane_count = 3;

std::string_view to_string(lane l);
/// "bind(EMSMDB)", "EcDoConnectEx", ..., "opnum 7", "cookie".
std::string op_name(op_kind k, lane l, std::uint16_t opnum);

struct captured_op {
  op_kind kind = op_kind::other;
  lane on = lane::main;
  std::uint16_t opnum = 0;
  duration sent{};                    // offset of the request from the capture's time zero
  std::optional<duration> answered;   // offset of its answer; none: still outstanding at the capture's end
  bool answer_fault = false;          // answered by a fault or bind_nak
  std::uint32_t async_flags = 0;      // async_wait: pulFlagsOut of the captured answer
  protocol::byte_buffer request;      // the PDU as captured (cookie: the datagram payload)
  std::string name() const { return op_name(kind, on, opnum); }
};

struct captured_client {
  std::string user_dn;
  std::string mode;                        // "poll", "push" or "async", from what it did
  protocol::ip_endpoint main_endpoint;     // its EMSMDB connection's client end, as captured
  duration main_open{};                    // when that connection opened (SYN, else its first packet)
  std::optional<duration> async_open;      // the AsyncEMSMDB connection, if any
  bool uses_udp = false;                   // registers a callback or sends cookies
  std::vector<captured_op> ops;            // in capture order
  std::vector<duration> pings;             // datagrams carrying its registered context
  /// Indices into ops, per lane, in order.
  std::vector<std::size_t> lane_ops(lane l) const;
};

struct capture_summary {
  std::string link_type;
  std::uint64_t packets = 0;
  std::uint64_t ipv4_tcp = 0;
  std::uint64_t ipv4_udp = 0;
  std::uint64_t other_packets = 0;         // not IPv4 TCP/UDP (IPv6, ARP, ...), or truncated
  std::size_t tcp_connections = 0;
  std::size_t dcerpc_connections = 0;
  std::uint64_t pdus = 0;
  time_point time_zero{};                  // absolute (since 1970): the first client's first packet
  duration span{};                         // time zero to the last client operation
  std::vector<std::string> skipped;        // what could not be replayed, and why
};

struct capture_sessions {
  std::string error;                       // non-empty: the file could not be read
  capture_summary summary;
  std::vector<captured_client> clients;    // in order of their first packet
};

capture_sessions read_capture_sessions(const std::filesystem::path& path);

}  // namespace nudge::replay
