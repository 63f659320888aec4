#include <algorithm>
#include <string>

#include "nudge/protocol/random.hpp"
#include "nudge/sim/pcap_capture.hpp"

namespace nudge::sim {

using capture::capture_error;
using protocol::bytes_view;
using protocol::ip_endpoint;

// ---- ordering ------------------------------------------------------------------------------

void virtual_pcap_recorder::ordering_sink::frame(time_point t, std::span<const std::uint8_t> bytes) {
  if (holding_) {
    held_.push_back({t, {bytes.begin(), bytes.end()}});
    return;
  }
  if (t < last_) {  // never expected: the driver reports in time order
    ++stats_.reordered;
    t = last_;
  }
  last_ = t;
  out_.frame(t, bytes);
}

void virtual_pcap_recorder::ordering_sink::hold(bool on) {
  holding_ = on;
  if (on) return;
  // Stable: frames of one instant keep the order in which they were made.
  std::stable_sort(held_.begin(), held_.end(), [](const held& a, const held& b) { return a.t < b.t; });
  for (auto& h : held_) frame(h.t, h.bytes);
  held_.clear();
}

// ---- the recorder --------------------------------------------------------------------------

capture::synthesizer_options synthesizer_options_for(const metrics::wire_model& wire) {
  capture::synthesizer_options o;
  // Out-of-range lengths map to a value validate() refuses, never wrap onto a valid one.
  constexpr std::uint32_t byte_max = 255;
  o.syn_options_len = static_cast<std::uint8_t>(std::min(wire.syn_options, byte_max));
  o.tcp_options_len = static_cast<std::uint8_t>(std::min(wire.tcp_options, byte_max));
  // Segments carry wire.mss payload bytes, as nudge's counters assume.
  o.mss = static_cast<std::uint16_t>(std::clamp<std::uint32_t>(wire.mss, 1, 65535));
  return o;
}

virtual_pcap_recorder::virtual_pcap_recorder(virtual_pcap_options options)
    : options_(std::move(options)), order_(writer_, stats_), syn_(order_, synthesizer_options_for(options_.wire)) {}

virtual_pcap_recorder::~virtual_pcap_recorder() {
  if (writer_.is_open()) (void)writer_.close();
}

std::string virtual_pcap_recorder::open() {
  if (capture::validate(syn_.options()) != capture_error::none)
    return "a virtual capture writes TCP options as Windows (wire.syn_options = 12, wire.tcp_options = 0) or Linux "
           "(wire.syn_options = 20, wire.tcp_options = 12: timestamps) does; it cannot write wire.syn_options = " +
           std::to_string(options_.wire.syn_options) + " with wire.tcp_options = " +
           std::to_string(options_.wire.tcp_options);
  if (writer_.open(options_.path, options_.epoch_offset) != capture_error::none)
    return "cannot create " + options_.path.string() + ": " + writer_.error_text();
  return {};
}

std::string virtual_pcap_recorder::close() {
  stats_.frames = writer_.frames_written();
  stats_.ip_bytes = syn_.totals().ip_bytes;
  if (writer_.close() != capture_error::none) return "cannot write " + options_.path.string() + ": " + writer_.error_text();
  return {};
}

void virtual_pcap_recorder::check(capture_error e, const char* what) {
  if (e == capture_error::none) return;
  if (stats_.synthesis_errors++ == 0) stats_.first_error = std::string(what) + ": " + std::string(capture::to_string(e));
}

bool virtual_pcap_recorder::observe(std::size_t client, const engine::family& f) {
  ++stats_.clients_in_run;
  bool yes = options_.first_clients == 0 || client < options_.first_clients;
  if (yes && options_.sample < 1.0) {
    // Each client's draw depends on the seed and its index only: the same
    // clients are sampled whatever else the run does.
    std::uint64_t state = options_.seed ^ 0x5043415053414D50ull;  // "PCAPSAMP"
    state += client * 0x9E3779B97F4A7C15ull;
    const double u = static_cast<double>(splitmix64(state) >> 11) * 0x1.0p-53;
    yes = u < options_.sample;
  }
  if (yes) {
    ++stats_.clients_observed;
    if (classifier_.size() <= client) classifier_.resize(client + 1, nullptr);
    classifier_[client] = f.capture;
  }
  return yes;
}

void virtual_pcap_recorder::tcp_open(time_point at, std::size_t client, client::channel ch, const ip_endpoint& local,
                                     const ip_endpoint& server) {
  ends_[key(client, ch)] = {local, server};
  check(syn_.tcp_open(at, local, server), "tcp_open");
}

void virtual_pcap_recorder::tcp_data(time_point at, std::size_t client, client::channel ch, metrics::direction d,
                                     bytes_view bytes) {
  const auto it = ends_.find(key(client, ch));
  if (it == ends_.end()) return check(capture_error::no_connection, "tcp_data");
  const bool up = d == metrics::direction::to_server;
  const ip_endpoint& from = up ? it->second.local : it->second.server;
  const ip_endpoint& to = up ? it->second.server : it->second.local;
  // Each message of the send as the family's cores count them (e.g. one per
  // DCE/RPC PDU), segmented on its own.
  const engine::capture_classifier* c = client < classifier_.size() ? classifier_[client] : nullptr;
  while (!bytes.empty()) {
    std::size_t n = c ? c->sent_message_length(bytes) : bytes.size();
    if (n == 0 || n > bytes.size()) n = bytes.size();
    check(syn_.tcp_data(at, from, to, bytes.first(n)), "tcp_data");
    bytes = bytes.subspan(n);
  }
}

void virtual_pcap_recorder::tcp_close(time_point at, std::size_t client, client::channel ch, metrics::direction closer) {
  const engine::capture_classifier* c = client < classifier_.size() ? classifier_[client] : nullptr;
  const unsigned segments = c ? c->teardown_segments() : 0;
  if (segments == 0) return;  // the family counts no teardown: the connection stays open in the file
  const auto it = ends_.find(key(client, ch));
  if (it == ends_.end()) return check(capture_error::no_connection, "tcp_close");
  const auto style = segments == 3 ? capture::frame_synthesizer::close_style::three_way
                                   : capture::frame_synthesizer::close_style::four_way;
  if (closer == metrics::direction::to_server) check(syn_.tcp_close(at, it->second.local, it->second.server, style), "tcp_close");
  else check(syn_.tcp_close(at, it->second.server, it->second.local, style), "tcp_close");
  ends_.erase(it);
}

void virtual_pcap_recorder::pure_ack(time_point at, std::size_t client, client::channel ch, metrics::direction d) {
  const auto it = ends_.find(key(client, ch));
  if (it == ends_.end()) return check(capture_error::no_connection, "tcp_pure_ack");
  if (d == metrics::direction::to_server) check(syn_.tcp_pure_ack(at, it->second.local, it->second.server), "tcp_pure_ack");
  else check(syn_.tcp_pure_ack(at, it->second.server, it->second.local), "tcp_pure_ack");
}

void virtual_pcap_recorder::datagram(time_point at, std::size_t, const ip_endpoint& from, const ip_endpoint& to,
                                     bytes_view payload) {
  check(syn_.udp(at, from, to, payload), "udp");
}

void virtual_pcap_recorder::finishing(time_point) { order_.hold(true); }

void virtual_pcap_recorder::finished(time_point) { order_.hold(false); }

result<captured_virtual_run> capture_virtual_run(const run_plan& plan, const std::filesystem::path& path) {
  virtual_pcap_recorder rec({path, default_pcap_epoch(), 0, 1.0, plan.seed, plan.wire});
  if (auto why = rec.open(); !why.empty()) return fail("cannot write " + path.string() + ": " + why);
  virtual_options vo;
  vo.capture = &rec;
  captured_virtual_run out{run_virtual(plan, vo), {}};
  if (auto why = rec.close(); !why.empty()) return fail("cannot write " + path.string() + ": " + why);
  out.capture = rec.stats();
  if (out.capture.synthesis_errors != 0) return fail("the capture misses frames: " + out.capture.first_error);
  return out;
}

}  // namespace nudge::sim
