#pragma once
// A whole nudge session encoded as a pcap: a push, an async and a poll client
// (client_session) wired to one notifier_core with zero delay, every
// transmission recorded through the frame_synthesizer. The tests hand the file
// to tshark (with and without tools/wireshark/nudge_emsmdb.lua) and compare
// its decode with what nudge says it sent, recorded here.
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "nudge/protocol/byte_io.hpp"
#include "nudge/protocol/endpoint.hpp"

namespace nudge::pcap_test {

enum class iface : std::uint8_t { emsmdb, async_emsmdb };

/// One DCE/RPC PDU as nudge produced it, in capture order.
struct pdu_record {
  bool from_client = true;
  std::uint8_t ptype = 0;
  std::uint16_t frag_length = 0;
  std::uint32_t call_id = 0;
  std::optional<std::uint16_t> opnum;  // requests: from the PDU; responses: the request's
  std::size_t stream = 0;              // tcp.stream: connections numbered in opening order
  iface bound = iface::emsmdb;
};

struct datagram_record {
  protocol::ip_endpoint from;
  protocol::ip_endpoint to;
  protocol::byte_buffer payload;
};

struct session_capture {
  std::string error;  // empty on success
  std::vector<pdu_record> pdus;
  std::vector<datagram_record> datagrams;
  std::uint64_t frames = 0;
  protocol::ip_endpoint server;        // 127.0.0.1:7777
  protocol::ip_endpoint server_udp;    // 127.0.0.1:7778, where pings come from
  protocol::ip_endpoint callback;      // the push client's registered SOCKADDR
  protocol::byte_buffer context;       // the push client's rgbContext
  std::uint32_t polls_max_ms = 0;      // pcmsPollsMax the notifier returned
  std::vector<std::string> user_dns;   // push, async, poll client
  std::uint16_t poll_session_index = 0;  // picxr of the poll client (RopPending's SessionIndex)
  std::uint64_t events_injected = 0;
  std::uint64_t events_fetched = 0;    // by all clients (= RopNotify NewMail sent)
  std::uint64_t pending_sent = 0;      // responses with RopPending
  std::uint64_t async_completed = 0;   // EcDoAsyncWaitEx completed with NotificationPending
  std::uint32_t dummy_call_id = 0;     // the hand-encoded EcDummyRpc
};

/// Runs the scripted session and writes it to `path`.
session_capture write_session_capture(const std::filesystem::path& path);

/// The capture of write_session_capture, written once per process to a
/// temporary file that is removed at exit (kept when NUDGE_KEEP_PCAP is set).
struct capture_file {
  std::filesystem::path path;
  session_capture info;
  capture_file();
  ~capture_file();
  capture_file(const capture_file&) = delete;
  capture_file& operator=(const capture_file&) = delete;
};
const capture_file& shared_capture();

/// Lower-case hex of bytes, as tshark prints byte fields.
std::string hex(protocol::bytes_view b);

// ---- running tshark -----------------------------------------------------------
struct command_result {
  int status = -1;
  std::string out;
  std::string err;
};
/// Runs a shell command, capturing stdout and stderr separately.
command_result run_command(const std::string& command);
/// Absolute path of tshark, empty when it is not installed.
std::string find_tshark();
/// `-T fields` output split into rows and columns.
std::vector<std::vector<std::string>> split_rows(const std::string& text, char separator);
std::vector<std::string> split(const std::string& text, char separator);
/// A per-test temporary file name (removed by the caller).
std::filesystem::path temp_pcap(const std::string& stem);

}  // namespace nudge::pcap_test
