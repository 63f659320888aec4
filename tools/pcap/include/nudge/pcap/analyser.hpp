#pragma once
// The capture analyser: feed it packets in capture order (on_frame for
// link-layer frames, on_packet for decoded ones), then finish() gives the
// report: traffic per client, per flow, per mode and per message kind,
// counters per client, trigger and event latencies.
//
// Protocol-neutral: it reads frames, keeps TCP flows (handshakes, teardown,
// pure ACKs, sequence numbers) and sums; the registered family's
// engine::capture_reader frames the messages, names their kinds and counts per
// client session (nudge/engine/capture_classifier.hpp). One pass, streaming.
// Per packet: a flow lookup in an open-addressing table keyed by the 4-tuple,
// in-order TCP reassembly handing only new bytes to the family.
// See docs/pcap-tool.md for every rule (what counts as a fetch, a ping, a pure ACK).
//
// The report's fixed per-client fields (polls, fetches, pings, ...) and the
// enums below are nudge.pcap/1 as it was first written for the EMSMDB family:
// they are filled from the family's counters of the same names and stay zero
// for a family that counts no such thing; every family's counters are also in
// the generic `counters` vectors, named by the classifier's counter_names().
#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "nudge/client/client_session.hpp"
#include "nudge/engine/capture_classifier.hpp"
#include "nudge/metrics/latency_histogram.hpp"
#include "nudge/emsmdb/family.hpp"
#include "nudge/metrics/traffic.hpp"
#include "nudge/capture_reader/packet.hpp"
#include "nudge/protocol/endpoint.hpp"

namespace nudge::pcap_tool {

using metrics::direction;
using protocol::emsmdb::message_kind;
using metrics::traffic_cell;
using metrics::traffic_meter;
using protocol::bytes_view;
using protocol::ip_endpoint;
// Packets come from the capture layer shared with nudge-replay (tools/capture).
using capture_reader::decode_frame;
using capture_reader::decode_ip;
using capture_reader::frame_verdict;
using capture_reader::ip_proto_tcp;
using capture_reader::ip_proto_udp;
using capture_reader::link_type_name;
using capture_reader::link_type_supported;
using capture_reader::packet;
namespace tcp_flag = capture_reader::tcp_flag;

/// How sessions become the report's clients.
enum class client_grouping : std::uint8_t {
  automatic,  // by IP address, unless an address holds EMSMDB sessions at the same time
  ip,         // by IP address: a client's connections and UDP socket together
  session,    // each EMSMDB session (with its async connection and UDP socket) alone
};

struct analyser_options {
  /// The registered family whose captured traffic is read (engine::family::capture).
  /// Empty: the first registered family that reads captures.
  std::string family;
  /// The notifier's TCP port. Unset: learned from bind_ack PDUs (the side that
  /// answers a bind is the server).
  std::optional<std::uint16_t> server_port;
  /// The notifier's UDP source port. Unset: learned from datagrams that match a
  /// registered context. When set, any datagram of at most 16 bytes from this
  /// port is a ping even without its registration in the capture.
  std::optional<std::uint16_t> udp_port;
  /// An EcDoRpcExt2 within this long after a ping, an async-wait completion or a
  /// RopPending (and before the poll timer is due) is a fetch.
  duration fetch_window = std::chrono::seconds(5);
  /// Seconds to subtract from capture timestamps to get the clock the NewMail
  /// creation stamps use. Unset: automatic (see docs/pcap-tool.md).
  std::optional<double> clock_offset_s;
  client_grouping group_by = client_grouping::automatic;
  /// TCP flows tracked at most (memory bound); later flows are counted as skipped.
  std::size_t max_flows = std::size_t{1} << 20;
};

// A captured client's mode is the simulator's: one vocabulary for both.
using client::client_mode;
using client::client_mode_count;
using client::to_string;

/// What made a client fetch: the reason an EcDoRpcExt2 is a fetch.
enum class fetch_trigger : std::uint8_t { ping, async_wait, pending };
inline constexpr std::size_t fetch_trigger_count = 3;
std::string_view to_string(fetch_trigger t);

/// Traffic per kind and direction. nudge's kinds live in `meter` (directions:
/// to_server = from the client, to_client = to the client); `other` holds what
/// has no nudge kind: PDUs of other opnums and bytes that could not be framed.
struct kind_traffic {
  traffic_meter meter;
  std::array<traffic_cell, 2> other{};

  traffic_cell total(direction d) const {
    traffic_cell t = meter.total(d);
    t += other[static_cast<std::size_t>(d)];
    return t;
  }
  traffic_cell total() const {
    traffic_cell t = total(direction::to_server);
    t += total(direction::to_client);
    return t;
  }
  kind_traffic& operator+=(const kind_traffic& o) {
    meter += o.meter;
    other[0] += o.other[0];
    other[1] += o.other[1];
    return *this;
  }
};

/// Whether a family counter of this name fills one of nudge.pcap/1's fixed
/// fields (polls, fetches, ..., fetches_by_trigger.<trigger>).
bool is_fixed_field(std::string_view counter_name);

/// Modes a report holds at most (a family declares fewer).
inline constexpr std::size_t max_modes = 8;

/// TCP stream health of one flow (or summed).
struct stream_stats {
  std::uint64_t pdus = 0;                 // DCE/RPC PDUs framed
  std::uint64_t malformed_pdus = 0;       // headers that did not frame (then resynchronised)
  std::uint64_t gaps = 0;                 // a segment beyond the next expected byte (lost or reordered)
  std::uint64_t retransmissions = 0;      // segments carrying only bytes already seen
  std::uint64_t reordered = 0;            // late segments with bytes a gap skipped (lost to framing)
  std::uint64_t partial_overlaps = 0;     // segments carrying some bytes already seen
  std::uint64_t truncated_segments = 0;   // payload cut by the snaplen
  std::uint64_t resyncs = 0;              // framing restarted at a segment that begins a PDU
  std::uint64_t unframed_segments = 0;    // segments skipped while looking for a PDU start
  stream_stats& operator+=(const stream_stats& o);
};

/// A short summary of a latency sample set.
struct latency_summary {
  std::uint64_t count = 0;
  double mean_s = 0;
  double p50_s = 0;
  double p90_s = 0;
  double p99_s = 0;
  double max_s = 0;
  static latency_summary of(const metrics::latency_histogram& h);
  /// Exact, from samples in nanoseconds (sorted in place).
  static latency_summary of_samples(std::vector<std::int64_t>& ns);
};

struct flow_report {
  bool tcp = true;
  ip_endpoint client;  // TCP: the side that connected (or sent the first request); UDP: the client's socket
  ip_endpoint server;  // the notifier's endpoint
  std::string interface;  // "emsmdb", "async_emsmdb", "unknown" (no bind seen), "udp"
  kind_traffic traffic;
  traffic_cell teardown;  // FIN/RST and the ACKs of FINs (inside tcp_setup as well)
  stream_stats stream;
  std::uint64_t packets = 0;
  time_point first{};
  time_point last{};
  bool saw_syn = false;
  bool saw_close = false;
};

struct client_report {
  ip_endpoint address;  // grouped by IP: port 0; by session: the main connection's client endpoint
  client_mode mode = client_mode::poll;  // the family's mode index (names: analysis::names)
  std::vector<std::uint64_t> counters;             // by names->counter_names()
  std::vector<std::optional<std::int64_t>> facts;  // by names->fact_names()
  std::vector<latency_summary> latencies;          // by names->latency_names()
  std::vector<flow_report> flows;
  kind_traffic traffic;
  traffic_cell teardown;
  std::uint64_t polls = 0;
  std::uint64_t wasted_polls = 0;    // poll responses without NewMail details
  std::uint64_t fetches = 0;
  std::uint64_t wasted_fetches = 0;
  std::array<std::uint64_t, fetch_trigger_count> fetches_by_trigger{};
  std::uint64_t pings = 0;           // datagrams classified as pings to this client
  std::uint64_t pings_matched = 0;   // of which payload = a context this client registered
  std::uint64_t pings_answered = 0;  // followed by a fetch within the window
  std::uint64_t keepalives = 0;
  std::uint64_t registrations = 0;
  std::uint64_t async_connects = 0;
  std::uint64_t async_waits = 0;
  std::uint64_t async_notified = 0;  // waits completed with NotificationPending
  std::uint64_t pending_seen = 0;    // responses with a RopPending for this client's session
  std::uint64_t dummies = 0;
  std::uint64_t faults = 0;
  std::uint64_t events = 0;          // NewMail details fetched
  std::optional<double> poll_interval_s;  // median gap between consecutive polls
  std::uint64_t poll_gaps = 0;
  std::optional<std::uint32_t> polls_max_ms;  // pcmsPollsMax from EcDoConnectEx
  std::optional<std::uint16_t> session_index;
  latency_summary ping_to_fetch;
  latency_summary event_latency;
};

struct mode_report {
  std::uint64_t clients = 0;
  std::vector<std::uint64_t> counters;               // by names->counter_names()
  std::vector<metrics::latency_histogram> latencies;  // by names->latency_names()
  kind_traffic traffic;
  traffic_cell teardown;
  std::uint64_t polls = 0, wasted_polls = 0, fetches = 0, wasted_fetches = 0;
  std::array<std::uint64_t, fetch_trigger_count> fetches_by_trigger{};
  std::uint64_t pings = 0, pings_matched = 0, pings_answered = 0, keepalives = 0;
  std::uint64_t registrations = 0, async_connects = 0, async_waits = 0, async_notified = 0, pending_seen = 0;
  std::uint64_t dummies = 0, faults = 0, events = 0;
  metrics::latency_histogram ping_to_fetch;
  metrics::latency_histogram async_to_fetch;
  metrics::latency_histogram event_latency;
  mode_report& operator+=(const mode_report& o);
};

struct ping_record {
  time_point at{};
  std::uint32_t client = 0;  // index into analysis::clients
  ip_endpoint from;
  ip_endpoint to;
  std::vector<std::uint8_t> payload;
  bool matched = false;  // equals a context registered in the capture
  std::optional<time_point> fetch_at;  // the EcDoRpcExt2 request that followed
  std::uint32_t fetch_call_id = 0;
};

struct event_record {
  std::uint64_t id = 0;        // the MID's global counter (nudge's event id)
  std::uint32_t client = 0;    // index into analysis::clients
  time_point seen{};           // capture time of the response that carried it
  std::optional<std::int64_t> created_us;  // from "IPM.Note.t<16 hex>", run clock
  std::optional<double> latency_s;         // seen - clock offset - created
  std::uint8_t path = 0;       // 0 poll, 1 push, 2 async (what made the client fetch it)
};

/// Packets left out of the per-client figures, by reason.
struct skip_counts {
  std::uint64_t short_link = 0;
  std::uint64_t not_ip = 0;
  std::uint64_t bad_ip = 0;
  std::uint64_t ip_fragments = 0;
  std::uint64_t other_protocol = 0;
  std::uint64_t bad_l4 = 0;
  std::uint64_t unrelated_tcp = 0;  // packets of TCP flows that never carried the notifier's DCE/RPC
  std::uint64_t unrelated_udp = 0;  // datagrams that are neither pings nor keepalives
  std::uint64_t flow_table_full = 0;
  std::uint64_t total() const {
    return short_link + not_ip + bad_ip + ip_fragments + other_protocol + bad_l4 + unrelated_tcp + unrelated_udp +
           flow_table_full;
  }
};

struct analysis {
  /// The family's names for the kind and mode indices the counters use: the
  /// report prints these, never a list of its own.
  /// Set by the analyser from the registry (engine::family::capture).
  const engine::capture_classifier* names = nullptr;
  // Filled by the reader (capture_reader.hpp); the analyser leaves them alone.
  std::string file;
  std::string format;     // "pcap" or "pcapng"
  std::string link_type;  // "EN10MB", ...
  std::string error;      // why reading stopped early (truncated or corrupt), empty if it did not
  std::optional<std::uint64_t> truncated_at;  // 1-based number of the record that could not be read
  double read_seconds = 0;

  std::uint64_t packets = 0;  // frames handed to the analyser
  std::uint64_t ip_bytes = 0;
  std::optional<time_point> first;
  std::optional<time_point> last;
  skip_counts skipped;
  stream_stats stream;  // summed over the notifier's TCP flows
  std::uint64_t tcp_flows = 0;  // notifier flows (TCP)
  std::uint64_t udp_flows = 0;

  std::vector<ip_endpoint> notifier_tcp;  // learned (bind_ack senders) or from --server-port
  std::vector<ip_endpoint> notifier_udp;  // where pings came from / keepalives went
  bool server_port_given = false;
  bool udp_port_given = false;
  double fetch_window_s = 5;

  std::string grouping;                // "ip" or "session": what a client is (analyser_options::group_by)
  std::vector<client_report> clients;  // in order of first appearance
  std::array<mode_report, max_modes> modes;  // by mode index (names->mode_names())
  mode_report total;
  std::vector<ping_record> pings;
  std::vector<event_record> events;

  // Event latency clock: run clock = capture time - clock_offset_s.
  double clock_offset_s = 0;
  std::string clock_basis;  // "given", "same" (stamps near capture time), "whole-second start", "none"
  std::uint64_t negative_latencies = 0;  // events that seem fetched before they were created (clock caveat)
};

/// The family analyser_options::family names (or the default one), null when
/// no registered family of that name reads captures.
const engine::capture_classifier* capture_family(std::string_view name);

class analyser {
 public:
  explicit analyser(analyser_options options = {});
  ~analyser();
  analyser(analyser&&) noexcept;
  analyser& operator=(analyser&&) noexcept;
  analyser(const analyser&) = delete;
  analyser& operator=(const analyser&) = delete;

  /// One link-layer frame of type `dlt` (a DLT_ value) captured at `ts`:
  /// `frame` is what the capture holds (caplen bytes), `wire_length` the
  /// original length. The frame is copied; analysis runs a few frames behind
  /// (so the state it needs can be prefetched) and catches up in finish().
  void on_frame(int dlt, time_point ts, bytes_view frame, std::uint32_t wire_length);
  /// One decoded packet (what on_frame produces): the per-packet entry point.
  void on_packet(const packet& p);
  /// A frame decode_frame() refused: counted under its reason.
  void on_skipped(frame_verdict why);

  /// Analyses what is still queued and builds the report. The analyser can take
  /// more packets afterwards and finish() again (the report covers everything seen).
  analysis finish();

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace nudge::pcap_tool
