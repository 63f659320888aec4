#include "nudge/capture_reader/tcp_flows.hpp"

namespace nudge::capture_reader {

namespace dcerpc = protocol::dcerpc;

namespace {

void append(tcp_flow& f, int dir, time_point t, bytes_view data) {
  detail::tcp_half& h = f.half[static_cast<std::size_t>(dir)];
  if (h.broken || data.empty()) return;
  if (h.framer.pending() == 0) h.buf_start = t;
  h.next += static_cast<std::uint32_t>(data.size());
  h.framer.append(data);
  while (true) {
    const auto p = h.framer.next();
    if (p.outcome == dcerpc::stream_framer::status::need_more) return;
    if (p.outcome == dcerpc::stream_framer::status::malformed) {
      h.broken = true;
      h.framer.clear();
      f.not_dcerpc = true;
      return;
    }
    f.pdus.push_back({dir, h.buf_start, byte_buffer(p.pdu.begin(), p.pdu.end())});
    h.buf_start = t;  // what follows in this segment arrived now
  }
}

void add_segment(tcp_flow& f, int dir, time_point t, std::uint32_t seq, bytes_view data) {
  detail::tcp_half& h = f.half[static_cast<std::size_t>(dir)];
  if (data.empty()) return;
  if (!h.have_next) {  // no SYN seen: start where the capture starts
    h.have_next = true;
    h.next = seq;
  }
  const auto ahead = static_cast<std::int32_t>(seq - h.next);
  if (ahead > 0) {
    h.later.try_emplace(seq, byte_buffer(data.begin(), data.end()), t);
    return;
  }
  const auto skip = static_cast<std::size_t>(-static_cast<std::int64_t>(ahead));
  if (skip >= data.size()) return;  // a retransmission of what we have
  append(f, dir, t, data.subspan(skip));
  // Segments that arrived early may now continue the stream.
  for (bool progressed = true; progressed && !h.later.empty();) {
    progressed = false;
    for (auto it = h.later.begin(); it != h.later.end(); ++it) {
      const auto a = static_cast<std::int32_t>(it->first - h.next);
      if (a > 0) continue;
      auto [bytes, when] = std::move(it->second);
      const std::uint32_t s = it->first;
      h.later.erase(it);
      const auto k = static_cast<std::size_t>(h.next - s);
      if (k < bytes.size()) append(f, dir, when, bytes_view(bytes).subspan(k));
      progressed = true;
      break;
    }
  }
}

}  // namespace

std::size_t tcp_flows::flow_key_hash::operator()(const flow_key& k) const noexcept {
  protocol::ip_endpoint_hash h;
  return h(k.lo) * 31 ^ h(k.hi);
}

void tcp_flows::add(const packet& p, const ip_endpoint& src, const ip_endpoint& dst) {
  const flow_key key = src < dst ? flow_key{src, dst} : flow_key{dst, src};
  const bool syn_only = (p.tcp_flags & tcp_flag::syn) && !(p.tcp_flags & tcp_flag::ack);
  auto it = live_.find(key);
  // A new SYN on a pair that closed (or already had its SYN) starts a new connection.
  if (it != live_.end() && syn_only) {
    const tcp_flow& old = *flows_[it->second];
    if (old.closed || old.syn_seen) it = live_.end();
  }
  if (it == live_.end()) {
    auto f = std::make_unique<tcp_flow>();
    f->a = src;
    f->b = dst;
    f->opened = p.ts;
    flows_.push_back(std::move(f));
    it = live_.insert_or_assign(key, flows_.size() - 1).first;
  }
  tcp_flow& f = *flows_[it->second];
  const int dir = src == f.a ? 0 : 1;
  if (p.tcp_flags & tcp_flag::syn) {
    detail::tcp_half& half = f.half[static_cast<std::size_t>(dir)];
    if (!half.have_next) {
      half.have_next = true;
      half.next = p.seq + 1;
    }
    if (syn_only) {
      f.client_dir = dir;
      f.syn_seen = true;
      f.opened = p.ts;
    }
  }
  if (p.tcp_flags & (tcp_flag::fin | tcp_flag::rst)) f.closed = true;
  add_segment(f, dir, p.ts, (p.tcp_flags & tcp_flag::syn) ? p.seq + 1 : p.seq, p.payload);
}

}  // namespace nudge::capture_reader
