#pragma once
// client-sim --pcap: captures of a run.
//
//  * Virtual time (virtual_pcap_recorder): the observed clients' traffic as
//    their own host would capture it, synthesized by tools/capture's
//    frame_synthesizer (Ethernet/IPv4/TCP/UDP, consistent sequence numbers,
//    pure ACKs from the sessions' estimate) with simulated timestamps shifted
//    by an epoch offset. Frames are written in non-decreasing time order. Any
//    family's clients: its capture classifier says how a send splits into
//    messages and whether a close writes a teardown (3 or 4 segments).
//  * Real sockets (live_capture): libpcap on the loopback interface, filtered
//    to the notifier's TCP and UDP ports, from before the first client connects
//    until after the drain; pcap's received/dropped statistics at the end.
//
// docs/captures.md describes both, with their limits.
#include <atomic>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <vector>

#include "nudge/capture/frame_synthesizer.hpp"
#include "nudge/capture/pcap_file_writer.hpp"
#include "nudge/engine/capture_classifier.hpp"
#include "nudge/engine/registry.hpp"
#include "nudge/metrics/traffic.hpp"
#include "nudge/protocol/endpoint.hpp"
#include "nudge/protocol/result.hpp"
#include "nudge/sim/run_plan.hpp"
#include "nudge/sim/run_result.hpp"
#include "nudge/sim/virtual_driver.hpp"

struct pcap;
struct pcap_dumper;

namespace nudge::sim {

/// 2026-01-05 09:00:00 UTC, as a duration since 1970: where a virtual
/// capture's time zero lands by default.
duration default_pcap_epoch();
/// "2026-01-05T09:00:00Z", "2026-01-05 09:00:00" (UTC), "2026-01-05" or a
/// number of seconds since 1970 ("1767603600", fractions allowed). nullopt when
/// it does not parse.
std::optional<duration> parse_pcap_epoch(std::string_view text);
/// The inverse, for messages: "2026-01-05T09:00:00Z" (whole seconds).
std::string format_pcap_epoch(duration since_1970);

/// What a capture of the notifier filters on: its TCP and UDP endpoints exactly
/// (address and port), so that another program's socket that happens to use
/// the same port number on another loopback address stays out of the file.
std::string notifier_capture_filter(const protocol::ip_endpoint& tcp, const protocol::ip_endpoint& udp);
/// The same over every endpoint the notifier serves (each family's listeners
/// and UDP sockets); one of each gives the filter above.
std::string notifier_capture_filter(const std::vector<protocol::ip_endpoint>& tcp,
                                    const std::vector<protocol::ip_endpoint>& udp);

struct virtual_pcap_options {
  std::filesystem::path path;
  duration epoch_offset = default_pcap_epoch();
  /// Observe only clients 0 .. first_clients-1 (0: no such limit).
  std::size_t first_clients = 0;
  /// Observe each client with this probability, drawn from `seed` and the
  /// client's index (1: everyone). Applied after first_clients.
  double sample = 1.0;
  std::uint64_t seed = 1;
  /// The run's wire model: the TCP option lengths and the MSS the frames carry
  /// (windows or linux preset; open() refuses lengths it cannot write).
  metrics::wire_model wire;
};

/// The synthesizer options that write `wire`'s TCP option lengths and MSS.
capture::synthesizer_options synthesizer_options_for(const metrics::wire_model& wire);

struct virtual_pcap_stats {
  std::size_t clients_observed = 0;
  std::size_t clients_in_run = 0;
  std::uint64_t frames = 0;
  std::uint64_t ip_bytes = 0;           // nudge's wire bytes of what was captured
  std::uint64_t reordered = 0;          // frames that arrived late and were stamped with the latest time (0)
  std::uint64_t synthesis_errors = 0;   // calls the synthesizer refused (0)
  std::string first_error;
};

/// Writes the observed clients' traffic to a pcap file (see virtual_capture
/// for the addresses). Open, pass as virtual_options::capture, run, close.
class virtual_pcap_recorder final : public virtual_capture {
 public:
  explicit virtual_pcap_recorder(virtual_pcap_options options);
  ~virtual_pcap_recorder() override;
  virtual_pcap_recorder(const virtual_pcap_recorder&) = delete;
  virtual_pcap_recorder& operator=(const virtual_pcap_recorder&) = delete;

  /// Creates the file; empty on success, else the reason (including option
  /// lengths in the wire model that the synthesizer cannot write).
  std::string open();
  /// Flushes and closes; empty on success, else the reason.
  std::string close();

  const virtual_pcap_stats& stats() const { return stats_; }
  /// The synthesizer's per-flow counters (one per TCP connection / UDP pair).
  const capture::frame_synthesizer& synthesizer() const { return syn_; }

  bool observe(std::size_t client, const engine::family& f) override;
  void tcp_open(time_point at, std::size_t client, client::channel ch, const protocol::ip_endpoint& local,
                const protocol::ip_endpoint& server) override;
  void tcp_data(time_point at, std::size_t client, client::channel ch, metrics::direction d,
                protocol::bytes_view bytes) override;
  void tcp_close(time_point at, std::size_t client, client::channel ch, metrics::direction closer) override;
  void pure_ack(time_point at, std::size_t client, client::channel ch, metrics::direction d) override;
  void datagram(time_point at, std::size_t client, const protocol::ip_endpoint& from, const protocol::ip_endpoint& to,
                protocol::bytes_view payload) override;
  void finishing(time_point end) override;
  void finished(time_point end) override;

 private:
  // Writes frames in time order: straight through during the run; buffered
  // and sorted while the sessions settle their ACKs at the end.
  class ordering_sink final : public capture::frame_sink {
   public:
    explicit ordering_sink(capture::frame_sink& out, virtual_pcap_stats& stats) : out_(out), stats_(stats) {}
    void frame(time_point t, std::span<const std::uint8_t> bytes) override;
    void hold(bool on);

   private:
    struct held {
      time_point t;
      std::vector<std::uint8_t> bytes;
    };
    capture::frame_sink& out_;
    virtual_pcap_stats& stats_;
    time_point last_{};
    bool holding_ = false;
    std::vector<held> held_;
  };
  struct channel_ends {
    protocol::ip_endpoint local;
    protocol::ip_endpoint server;
  };
  static std::uint64_t key(std::size_t client, client::channel ch) {
    return (std::uint64_t{client} << 1) | static_cast<std::uint64_t>(ch);
  }
  void check(capture::capture_error e, const char* what);

  virtual_pcap_options options_;
  virtual_pcap_stats stats_;
  capture::pcap_file_writer writer_;
  ordering_sink order_;
  capture::frame_synthesizer syn_;
  std::unordered_map<std::uint64_t, channel_ends> ends_;
  // By client: how its family's sends split into messages and its closes into
  // segments (null: not observed, or a family without a capture classifier).
  std::vector<const engine::capture_classifier*> classifier_;
};

/// A virtual run and the capture it wrote.
struct captured_virtual_run {
  run_result result;
  virtual_pcap_stats capture;
};

/// Runs `plan` in virtual time with every client observed and writes their
/// traffic to `path` (epoch default_pcap_epoch(), the plan's wire model): a
/// capture of many clients whose contents the run's own result describes, for
/// the tests and the benchmark that need one. Fails when the file cannot be
/// written or the synthesizer refused a frame.
result<captured_virtual_run> capture_virtual_run(const run_plan& plan, const std::filesystem::path& path);

struct live_capture_options {
  std::filesystem::path path;
  std::string interface = "lo";
  std::string filter;                          // BPF, e.g. notifier_capture_filter(tcp, udp)
  int buffer_bytes = 64 * 1024 * 1024;         // kernel ring: big, so bursts are not dropped
  int snaplen = 65535;
};

struct live_capture_stats {
  std::uint64_t written = 0;     // packets written to the file
  std::uint64_t received = 0;    // pcap_stats ps_recv: packets that passed the filter
  std::uint64_t dropped = 0;     // ps_drop: dropped for lack of buffer space
  std::uint64_t if_dropped = 0;  // ps_ifdrop: dropped by the interface (not supported everywhere)
  bool have_pcap_stats = false;
  std::string error;             // a problem after start (e.g. a write failure)
};

/// A libpcap capture running on its own thread, written with pcap_dump.
class live_capture {
 public:
  live_capture() = default;
  ~live_capture();
  live_capture(const live_capture&) = delete;
  live_capture& operator=(const live_capture&) = delete;

  /// Opens the interface (immediate mode, the buffer size, the filter) and the
  /// file, and starts the capture thread. Empty on success, else the reason,
  /// naming the permission problem when that is what it is.
  std::string start(const live_capture_options& options);
  /// Waits `settle` for packets still on their way through the kernel, drains
  /// what is buffered, stops the thread and closes the file. Safe to call twice.
  live_capture_stats stop(duration settle = std::chrono::milliseconds(200));
  bool running() const { return thread_.joinable(); }

 private:
  void loop();

  pcap* handle_ = nullptr;
  pcap_dumper* dumper_ = nullptr;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::atomic<std::uint64_t> written_{0};
  live_capture_stats last_;
};

}  // namespace nudge::sim
