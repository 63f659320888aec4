#include "nudge/capture/frame_synthesizer.hpp"

#include <algorithm>
#include <chrono>

#include "checksum.hpp"

namespace nudge::capture {
namespace {

constexpr std::uint8_t tcp_fin = 0x01;
constexpr std::uint8_t tcp_syn = 0x02;
constexpr std::uint8_t tcp_psh = 0x08;
constexpr std::uint8_t tcp_ack = 0x10;

constexpr std::uint8_t ip_proto_tcp = 6;
constexpr std::uint8_t ip_proto_udp = 17;

constexpr std::size_t l4_offset = ethernet_header_len + ipv4_header_len;

void put16(std::vector<std::uint8_t>& b, std::size_t at, std::uint16_t v) {
  b[at] = static_cast<std::uint8_t>(v >> 8);
  b[at + 1] = static_cast<std::uint8_t>(v);
}

void put32(std::vector<std::uint8_t>& b, std::size_t at, std::uint32_t v) {
  put16(b, at, static_cast<std::uint16_t>(v >> 16));
  put16(b, at + 2, static_cast<std::uint16_t>(v));
}

void put_mac(std::vector<std::uint8_t>& b, std::size_t at, std::uint32_t addr) {
  b[at] = 0x02;  // locally administered, unicast
  b[at + 1] = 0x00;
  put32(b, at + 2, addr);
}

// TCP and UDP checksums cover a pseudo-header of addresses, protocol and length.
std::uint64_t pseudo_header_sum(std::uint32_t src, std::uint32_t dst, std::uint8_t proto, std::size_t l4_len) {
  return std::uint64_t{src >> 16} + (src & 0xffff) + (dst >> 16) + (dst & 0xffff) + proto + l4_len;
}

// splitmix64: spreads the connection identity over the whole sequence space so
// ISNs look like a real stack's while staying reproducible run to run.
std::uint64_t mix(std::uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

// RFC 7323 timestamps: TSval is the sender's clock in milliseconds; the
// simulated clock serves, so reruns give identical values.
std::uint32_t timestamp_ms(time_point t) {
  return static_cast<std::uint32_t>(std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count());
}

}  // namespace

capture_error validate(const synthesizer_options& o) {
  const bool windows = o.syn_options_len == tcp_syn_options_len && o.tcp_options_len == 0;
  const bool linux_ts = o.syn_options_len == tcp_syn_timestamp_options_len && o.tcp_options_len == tcp_timestamp_options_len;
  return windows || linux_ts ? capture_error::none : capture_error::unsupported_tcp_options;
}

frame_synthesizer::frame_synthesizer(frame_sink& sink, synthesizer_options options)
    : sink_(&sink), options_(options), options_error_(validate(options)) {
  // RFC 7323 caps the shift at 14, and a zero MSS would never make progress.
  options_.window_scale = std::min<std::uint8_t>(options_.window_scale, 14);
  options_.mss = std::max<std::uint16_t>(options_.mss, 1);
  options_.mtu = std::max<std::uint16_t>(options_.mtu, 28);
  frame_.reserve(ethernet_header_len + ipv4_header_len + tcp_header_len + tcp_syn_timestamp_options_len + options_.mss);
}

capture_error frame_synthesizer::check(const ip_endpoint& from, const ip_endpoint& to) {
  if (from.is_v6 || to.is_v6) return capture_error::ipv6_unsupported;
  if (to_v4(from) == to_v4(to)) return capture_error::same_endpoint;
  return capture_error::none;
}

frame_synthesizer::v4_endpoint frame_synthesizer::to_v4(const ip_endpoint& e) {
  return {e.v4_host_order(), e.port};  // bytes 4..15 are ignored for IPv4
}

std::array<std::uint8_t, 6> frame_synthesizer::mac_for(const ip_endpoint& host) {
  return {0x02, 0x00, host.address[0], host.address[1], host.address[2], host.address[3]};
}

frame_synthesizer::tcp_route frame_synthesizer::find_tcp(const v4_endpoint& from, const v4_endpoint& to) {
  if (auto it = tcp_.find({from, to}); it != tcp_.end()) return {&it->second, true};
  if (auto it = tcp_.find({to, from}); it != tcp_.end()) return {&it->second, false};
  return {};
}

bool frame_synthesizer::is_open(const ip_endpoint& client, const ip_endpoint& server) const {
  if (client.is_v6 || server.is_v6) return false;
  return tcp_.contains({to_v4(client), to_v4(server)});
}

std::uint16_t frame_synthesizer::next_ip_id(std::uint32_t src_addr) {
  // Per host, starting at a value derived from the address, so two hosts'
  // IDs are told apart in a capture and reruns give identical files.
  auto [it, inserted] = ip_ids_.try_emplace(src_addr, static_cast<std::uint16_t>(mix(src_addr)));
  return it->second++;
}

std::uint32_t frame_synthesizer::initial_seq(const v4_endpoint& client, const v4_endpoint& server) {
  const std::uint64_t id = (std::uint64_t{client.addr} << 32 | server.addr) ^
                           (std::uint64_t{client.port} << 16 | server.port) ^ (connections_opened_ << 48);
  return static_cast<std::uint32_t>(mix(id));
}

capture_error frame_synthesizer::tcp_open(time_point t, const ip_endpoint& client, const ip_endpoint& server) {
  if (options_error_ != capture_error::none) return options_error_;
  if (auto e = check(client, server); e != capture_error::none) return e;
  const v4_endpoint c = to_v4(client);
  const v4_endpoint s = to_v4(server);
  if (find_tcp(c, s).conn) return capture_error::connection_exists;

  flows_.push_back({transport::tcp, client, server, {}, {}, true});
  tcp_connection conn;
  conn.client_ep = c;
  conn.server_ep = s;
  conn.flow = flows_.size() - 1;
  conn.client.next_seq = conn.client.acked = initial_seq(c, s);
  conn.server.next_seq = conn.server.acked = initial_seq(s, c);
  ++connections_opened_;
  tcp_connection& stored = tcp_.insert_or_assign({c, s}, conn).first->second;

  const tcp_route to_server{&stored, true};
  emit_tcp(t, to_server, tcp_syn, {});
  emit_tcp(t, to_server.reversed(), tcp_syn | tcp_ack, {});
  emit_tcp(t, to_server, tcp_ack, {});
  return capture_error::none;
}

capture_error frame_synthesizer::tcp_data(time_point t, const ip_endpoint& from, const ip_endpoint& to,
                                          std::span<const std::uint8_t> payload) {
  if (options_error_ != capture_error::none) return options_error_;
  if (auto e = check(from, to); e != capture_error::none) return e;
  const tcp_route r = find_tcp(to_v4(from), to_v4(to));
  if (!r.conn) return capture_error::no_connection;
  const tcp_half& self = r.from_client ? r.conn->client : r.conn->server;

  std::size_t offset = 0;
  while (offset < payload.size()) {
    const std::size_t n = std::min<std::size_t>(options_.mss, payload.size() - offset);
    // Wireshark flags a segment that reaches the edge of the receiver's window
    // ("window full"), so the receiver acknowledges first, as it would have.
    const tcp_half& peer = r.from_client ? r.conn->server : r.conn->client;
    const std::uint32_t in_flight = self.next_seq - self.acked;  // modulo 2^32 on purpose
    if (std::uint64_t{in_flight} + n >= peer.window) {
      emit_tcp(t, r.reversed(), tcp_ack, {});
      ++window_acks_;
    }
    const bool last = offset + n == payload.size();
    emit_tcp(t, r, static_cast<std::uint8_t>(tcp_ack | (last ? tcp_psh : 0)), payload.subspan(offset, n));
    offset += n;
  }
  return capture_error::none;
}

capture_error frame_synthesizer::tcp_pure_ack(time_point t, const ip_endpoint& from, const ip_endpoint& to) {
  if (options_error_ != capture_error::none) return options_error_;
  if (auto e = check(from, to); e != capture_error::none) return e;
  const tcp_route r = find_tcp(to_v4(from), to_v4(to));
  if (!r.conn) return capture_error::no_connection;
  emit_tcp(t, r, tcp_ack, {});
  return capture_error::none;
}

capture_error frame_synthesizer::tcp_close(time_point t, const ip_endpoint& closer, const ip_endpoint& other,
                                           close_style style) {
  if (options_error_ != capture_error::none) return options_error_;
  if (auto e = check(closer, other); e != capture_error::none) return e;
  const tcp_route r = find_tcp(to_v4(closer), to_v4(other));
  if (!r.conn) return capture_error::no_connection;
  emit_tcp(t, r, tcp_fin | tcp_ack, {});
  if (style == close_style::four_way) emit_tcp(t, r.reversed(), tcp_ack, {});
  emit_tcp(t, r.reversed(), tcp_fin | tcp_ack, {});
  emit_tcp(t, r, tcp_ack, {});
  flows_[r.conn->flow].open = false;
  tcp_.erase({r.conn->client_ep, r.conn->server_ep});
  return capture_error::none;
}

void frame_synthesizer::emit_tcp(time_point t, const tcp_route& r, std::uint8_t flags,
                                 std::span<const std::uint8_t> payload) {
  tcp_connection& conn = *r.conn;
  tcp_half& self = r.from_client ? conn.client : conn.server;
  tcp_half& peer = r.from_client ? conn.server : conn.client;
  const v4_endpoint& src = r.from_client ? conn.client_ep : conn.server_ep;
  const v4_endpoint& dst = r.from_client ? conn.server_ep : conn.client_ep;
  const bool syn = (flags & tcp_syn) != 0;
  const bool ack = (flags & tcp_ack) != 0;

  const std::size_t options_len = syn ? options_.syn_options_len : options_.tcp_options_len;
  const std::size_t header_len = tcp_header_len + options_len;
  const std::size_t l4_len = header_len + payload.size();
  frame_.assign(l4_offset + l4_len, 0);
  const std::size_t h = l4_offset;
  put16(frame_, h + 0, src.port);
  put16(frame_, h + 2, dst.port);
  put32(frame_, h + 4, self.next_seq);
  // Everything the peer sent has arrived (the synthesizer models no loss), so
  // every ACK covers the peer's whole stream so far.
  put32(frame_, h + 8, ack ? peer.next_seq : 0);
  frame_[h + 12] = static_cast<std::uint8_t>((header_len / 4) << 4);
  frame_[h + 13] = flags;
  put16(frame_, h + 14, syn ? options_.syn_window : options_.window);
  // The SYN window is never scaled; later ones are, once both SYNs offered scaling.
  self.window = syn ? options_.syn_window : std::uint32_t{options_.window} << options_.window_scale;
  // checksum (h + 16) filled below; urgent pointer (h + 18) stays 0
  const std::size_t o = h + tcp_header_len;
  // Timestamps (kind 8, length 10): TSval now, TSecr the peer's latest TSval.
  const auto put_timestamps = [&](std::size_t at) {
    self.tsval = timestamp_ms(t);
    frame_[at + 0] = 8;
    frame_[at + 1] = 10;
    put32(frame_, at + 2, self.tsval);
    put32(frame_, at + 6, peer.tsval);
  };
  if (syn && options_len == tcp_syn_timestamp_options_len) {  // Linux's order
    frame_[o + 0] = 2;  // MSS
    frame_[o + 1] = 4;
    put16(frame_, o + 2, options_.mss);
    frame_[o + 4] = 4;  // SACK permitted
    frame_[o + 5] = 2;
    put_timestamps(o + 6);
    frame_[o + 16] = 1;  // NOP
    frame_[o + 17] = 3;  // window scale
    frame_[o + 18] = 3;
    frame_[o + 19] = options_.window_scale;
  } else if (syn) {  // Windows' order
    frame_[o + 0] = 2;  // MSS
    frame_[o + 1] = 4;
    put16(frame_, o + 2, options_.mss);
    frame_[o + 4] = 1;  // NOP
    frame_[o + 5] = 3;  // window scale
    frame_[o + 6] = 3;
    frame_[o + 7] = options_.window_scale;
    frame_[o + 8] = 1;  // NOP
    frame_[o + 9] = 1;  // NOP
    frame_[o + 10] = 4;  // SACK permitted
    frame_[o + 11] = 2;
  } else if (options_len == tcp_timestamp_options_len) {
    frame_[o + 0] = 1;  // NOP
    frame_[o + 1] = 1;  // NOP
    put_timestamps(o + 2);
  }
  std::copy(payload.begin(), payload.end(), frame_.begin() + static_cast<std::ptrdiff_t>(h + header_len));
  const std::uint64_t sum = detail::checksum_add(pseudo_header_sum(src.addr, dst.addr, ip_proto_tcp, l4_len),
                                                 std::span<const std::uint8_t>(frame_).subspan(h, l4_len));
  put16(frame_, h + 16, detail::checksum_finish(sum));

  if (ack) peer.acked = peer.next_seq;
  // SYN and FIN each occupy one sequence number.
  self.next_seq += static_cast<std::uint32_t>(payload.size()) + (syn ? 1u : 0u) + ((flags & tcp_fin) != 0 ? 1u : 0u);

  send(t, conn.flow, r.from_client, src, dst, ip_proto_tcp, l4_len, payload.size(), payload.empty());
}

capture_error frame_synthesizer::udp(time_point t, const ip_endpoint& from, const ip_endpoint& to,
                                     std::span<const std::uint8_t> payload) {
  if (auto e = check(from, to); e != capture_error::none) return e;
  if (payload.size() > std::size_t{options_.mtu} - ipv4_header_len - udp_header_len)
    return capture_error::payload_too_large;
  const v4_endpoint src = to_v4(from);
  const v4_endpoint dst = to_v4(to);

  // Datagrams in either direction between the same two endpoints share a flow.
  const endpoint_pair key = src < dst ? endpoint_pair{src, dst} : endpoint_pair{dst, src};
  auto [it, inserted] = udp_.try_emplace(key, flows_.size());
  if (inserted) flows_.push_back({transport::udp, from, to, {}, {}, false});
  const std::size_t flow = it->second;
  const bool from_initiator = to_v4(flows_[flow].initiator) == src;

  const std::size_t l4_len = udp_header_len + payload.size();
  frame_.assign(l4_offset + l4_len, 0);
  const std::size_t h = l4_offset;
  put16(frame_, h + 0, src.port);
  put16(frame_, h + 2, dst.port);
  put16(frame_, h + 4, static_cast<std::uint16_t>(l4_len));
  std::copy(payload.begin(), payload.end(), frame_.begin() + static_cast<std::ptrdiff_t>(h + udp_header_len));
  std::uint16_t cs = detail::checksum_finish(
      detail::checksum_add(pseudo_header_sum(src.addr, dst.addr, ip_proto_udp, l4_len),
                           std::span<const std::uint8_t>(frame_).subspan(h, l4_len)));
  if (cs == 0) cs = 0xffff;  // 0 means "no checksum" in UDP over IPv4 (RFC 768)
  put16(frame_, h + 6, cs);

  send(t, flow, from_initiator, src, dst, ip_proto_udp, l4_len, payload.size(), false);
  return capture_error::none;
}

void frame_synthesizer::send(time_point t, std::size_t flow, bool from_initiator, const v4_endpoint& src,
                             const v4_endpoint& dst, std::uint8_t proto, std::size_t l4_len,
                             std::size_t payload_len, bool control) {
  put_mac(frame_, 0, dst.addr);
  put_mac(frame_, 6, src.addr);
  put16(frame_, 12, 0x0800);  // IPv4

  const std::size_t ip = ethernet_header_len;
  const std::size_t ip_len = ipv4_header_len + l4_len;
  frame_[ip + 0] = 0x45;  // version 4, 5 words of header
  frame_[ip + 1] = 0;     // DSCP / ECN
  put16(frame_, ip + 2, static_cast<std::uint16_t>(ip_len));
  put16(frame_, ip + 4, next_ip_id(src.addr));
  put16(frame_, ip + 6, 0x4000);  // don't fragment, offset 0
  frame_[ip + 8] = options_.ttl;
  frame_[ip + 9] = proto;
  put16(frame_, ip + 10, 0);
  put32(frame_, ip + 12, src.addr);
  put32(frame_, ip + 16, dst.addr);
  put16(frame_, ip + 10,
        detail::checksum_finish(
            detail::checksum_add(0, std::span<const std::uint8_t>(frame_).subspan(ip, ipv4_header_len))));

  sink_->frame(t, frame_);

  traffic_counters c;
  c.frames = 1;
  c.payload_bytes = payload_len;
  c.ip_bytes = ip_len;
  c.ethernet_bytes = frame_.size();
  if (control) {
    c.control_frames = 1;
    c.control_ip_bytes = ip_len;
  }
  totals_ += c;
  (from_initiator ? flows_[flow].from_initiator : flows_[flow].from_responder) += c;
}

traffic_counters frame_synthesizer::counters_for(const ip_endpoint& endpoint) const {
  traffic_counters sum;
  if (endpoint.is_v6) return sum;
  const v4_endpoint e = to_v4(endpoint);
  for (const flow_stats& f : flows_)
    if (to_v4(f.initiator) == e || to_v4(f.responder) == e) sum += f.total();
  return sum;
}

traffic_counters frame_synthesizer::counters_for_host(const ip_endpoint& host) const {
  traffic_counters sum;
  if (host.is_v6) return sum;
  const std::uint32_t a = to_v4(host).addr;
  for (const flow_stats& f : flows_)
    if (to_v4(f.initiator).addr == a || to_v4(f.responder).addr == a) sum += f.total();
  return sum;
}

}  // namespace nudge::capture
