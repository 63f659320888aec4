#include "nudge/metrics/traffic.hpp"

namespace nudge::metrics {

traffic_cell wire_model::handshake_to_server() const {
  if (is_abstract()) return {};
  // SYN (with its options) and the final ACK (with the options of every segment: Linux's timestamps).
  return {1, 0, 2ull * (ip_header + tcp_header) + syn_options + tcp_options, 2};
}
traffic_cell wire_model::handshake_to_client() const {
  if (is_abstract()) return {};
  // SYN-ACK (with options).
  return {0, 0, std::uint64_t{ip_header} + tcp_header + syn_options, 1};
}

traffic_cell traffic_meter::total(direction d) const {
  traffic_cell t;
  for (const auto& row : cells_) t += row[static_cast<std::size_t>(d)];
  return t;
}

traffic_cell traffic_meter::total() const {
  traffic_cell t = total(direction::to_server);
  t += total(direction::to_client);
  return t;
}

traffic_meter& traffic_meter::operator+=(const traffic_meter& o) {
  for (std::size_t k = 0; k < cells_.size(); ++k)
    for (std::size_t d = 0; d < 2; ++d) cells_[k][d] += o.cells_[k][d];
  return *this;
}

time_point ack_tracker::on_data_received(time_point now, duration delayed_ack) {
  delay_ = delayed_ack;
  const bool after_idle = idle_gap_ > duration::zero() && last_receipt_ != never && now - last_receipt_ > idle_gap_ &&
                          !interactive_;
  last_receipt_ = now;
  if (quick_acks_ > 0) {
    // Nothing is pending: quick ACKs come first, so every earlier receipt was acknowledged at once.
    --quick_acks_;
    return now;
  }
  time_point forced = never;
  // An earlier receipt whose ACK delay already ran out was acknowledged by a pure ACK.
  if (deadline_ != never && deadline_ < now) {
    forced = deadline_;
    interactive_ = false;
  }
  // After a gap the receipt is ACKed at once (when no earlier ACK is reported by this call).
  if (after_idle && forced == never && deadline_ == never) return now;
  if (deadline_ == never || forced != never) deadline_ = now + delayed_ack;
  return forced;
}

time_point ack_tracker::on_data_sent(time_point now) {
  time_point forced = never;
  if (deadline_ != never && deadline_ < now) {
    forced = deadline_;
    interactive_ = false;  // the delayed ACK fired
  }
  deadline_ = never;  // outgoing data carries the ACK
  if (last_receipt_ != never && now - last_receipt_ < delay_) interactive_ = true;  // an answer
  return forced;
}

time_point ack_tracker::flush(time_point now) {
  if (deadline_ != never && deadline_ <= now) {
    const time_point t = deadline_;
    deadline_ = never;
    interactive_ = false;
    return t;
  }
  return never;
}

}  // namespace nudge::metrics
