#include "nudge/sim/event_schedule.hpp"

namespace nudge::sim {

event_schedule::event_schedule(const run_plan& plan)
    : process_(plan.event_process, plan.events_per_client_hour),
      seed_(plan.seed),
      clients_(plan.clients),
      ramp_up_(plan.ramp_up),
      end_(time_point{} + plan.length) {}

time_point event_schedule::client_start(std::size_t client) const {
  if (clients_ == 0) return time_point{};
  return time_point{ramp_up_ * static_cast<std::int64_t>(client) / static_cast<std::int64_t>(clients_)};
}

event_schedule::mailbox event_schedule::mailbox_of(std::size_t client) const {
  std::uint64_t state = seed_ ^ 0x4556454E5453ull;  // "EVENTS"
  state += client * 0x9E3779B97F4A7C15ull;
  return {rng(splitmix64(state)), client_start(client), {}};
}

time_point event_schedule::next(mailbox& m) const {
  if (m.last == never) return never;
  const time_point at = process_.next(m.last, m.state, m.random);
  m.last = at < end_ ? at : never;
  return m.last;
}

std::vector<time_point> event_schedule::times_of(std::size_t client) const {
  std::vector<time_point> out;
  auto m = mailbox_of(client);
  for (time_point t = next(m); t != never; t = next(m)) out.push_back(t);
  return out;
}

event_stream::event_stream(const run_plan& plan, const std::vector<std::size_t>& clients)
    : schedule_(plan), clients_(clients), due_(later{&clients_}) {
  mail_.reserve(clients_.size());
  for (std::size_t k = 0; k < clients_.size(); ++k) {
    mail_.push_back(schedule_.mailbox_of(clients_[k]));
    draw(k);
  }
}

event_stream::event event_stream::pop() {
  const entry e = due_.top();
  due_.pop();
  draw(e.slot);
  return {e.at, clients_[e.slot]};
}

void event_stream::draw(std::size_t slot) {
  const time_point at = schedule_.next(mail_[slot]);
  if (at != never) due_.push({at, slot});
}

}  // namespace nudge::sim
