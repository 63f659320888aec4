// A client_session wired straight to a notifier_core (zero delay) in
// test-controlled time: poll timing, jitter bounds, push behaviour.
#include <gtest/gtest.h>

#include <memory>

#include "nudge/client/client_session.hpp"
#include "nudge/notifier/notifier_core.hpp"
#include "nudge/protocol/dcerpc.hpp"

using namespace nudge;
using namespace nudge::client;
using namespace std::chrono_literals;
using protocol::ip_endpoint;

namespace {

struct bench_pair {
  notifier::notifier_core core;
  client_metrics metrics;
  client_session client;
  std::array<notifier::connection_id, 2> conn{};
  std::vector<time_point> ext2_sent;  // when the client sent EcDoRpcExt2 (any kind)
  std::vector<protocol::byte_buffer> datagrams_to_client;

  /// When set, every response the core sends is re-cut into fragments of this
  /// size and handed over one fragment per receive() call, as a server
  /// honouring a smaller max_recv_frag would send it.
  std::size_t refragment_at = 0;
  std::size_t fragments_delivered = 0;

  bench_pair(notifier::notifier_config ncfg, client_config ccfg) : core(ncfg), client(std::move(ccfg), metrics) {}

  void deliver(time_point now, channel ch, const protocol::byte_buffer& bytes) {
    namespace dcerpc = protocol::dcerpc;
    auto d = dcerpc::decode_pdu(bytes);
    auto* r = d.complete() ? std::get_if<dcerpc::response_pdu>(&d.value) : nullptr;
    if (refragment_at == 0 || !r) return client.receive(now, ch, bytes);
    protocol::byte_buffer cut;
    dcerpc::encode_response_fragments(cut, r->call_id, r->context_id, r->stub, refragment_at);
    for (std::size_t used = 0; used < cut.size();) {
      const auto h = dcerpc::decode_common_header(protocol::bytes_view(cut).subspan(used));
      client.receive(now, ch, protocol::bytes_view(cut).subspan(used, h.value.frag_length));
      used += h.value.frag_length;
      ++fragments_delivered;
    }
  }

  void start(time_point now) {
    conn[0] = core.open_connection(now, ip_endpoint::v4(127, 0, 0, 2, 50000));
    if (client.needs_async_channel()) conn[1] = core.open_connection(now, ip_endpoint::v4(127, 0, 0, 2, 50001));
    client.start(now);
    pump(now);
  }
  // Moves bytes both ways until both sides are quiet.
  void pump(time_point now) {
    for (int round = 0; round < 100; ++round) {
      bool moved = false;
      auto outs = std::move(client.outputs());
      client.outputs().clear();
      for (auto& o : outs) {
        moved = true;
        if (auto* t = std::get_if<client::tcp_send>(&o)) {
          if (t->bytes.size() > 22 && t->bytes[2] == 0 && t->bytes[22] == 11 && t->ch == channel::main)
            ext2_sent.push_back(now);
          core.receive(now, conn[static_cast<std::size_t>(t->ch)], t->bytes);
        } else if (auto* u = std::get_if<client::udp_send>(&o)) {
          core.receive_datagram(now, client.config().callback_address, u->bytes);
        }
      }
      auto souts = std::move(core.outputs());
      core.outputs().clear();
      for (auto& o : souts) {
        moved = true;
        if (auto* t = std::get_if<notifier::tcp_send>(&o)) {
          deliver(now, t->conn == conn[0] ? channel::main : channel::async, t->bytes);
        } else if (auto* u = std::get_if<notifier::udp_send>(&o)) {
          datagrams_to_client.push_back(u->bytes);
          client.receive_datagram(now, ip_endpoint::v4(127, 0, 0, 1, 7778), u->bytes);
        }
      }
      if (!moved) return;
    }
    FAIL() << "pump did not settle";
  }
  // Advances time, firing both sides' timers in order.
  void run_until(time_point end) {
    while (true) {
      const time_point t = std::min(client.next_deadline(), core.next_deadline());
      if (t > end) return;
      client.on_timer(t);
      core.on_timer(t);
      pump(t);
    }
  }
};

client_config config(client_mode mode) {
  client_config c;
  c.mode = mode;
  c.user_dn = "/o=nudge/cn=Recipients/cn=bob";
  c.poll_interval = 5s;
  const protocol::byte_buffer ctx = {1, 2, 3, 4, 5, 6, 7, 8};
  c.context.assign(ctx);
  c.callback_address = ip_endpoint::v4(127, 0, 0, 2, 2500);
  return c;
}

}  // namespace

TEST(client_session, poll_mode_polls_exactly_every_interval) {
  bench_pair p({}, config(client_mode::poll));
  p.start(time_point{});
  EXPECT_TRUE(p.client.ready());
  p.run_until(time_point{} + 61s);
  ASSERT_EQ(p.ext2_sent.size(), 12u);
  for (std::size_t i = 0; i < p.ext2_sent.size(); ++i) EXPECT_EQ(p.ext2_sent[i], time_point{} + 5s * (i + 1));
  EXPECT_EQ(p.metrics.counter(nudge::protocol::emsmdb::counter::polls), 12u);
  EXPECT_EQ(p.metrics.counter(nudge::protocol::emsmdb::counter::wasted_polls), 12u);
}

TEST(client_session, poll_interval_defaults_to_pcms_polls_max) {
  notifier::notifier_config n;
  n.polls_max_ms = 7000;
  auto c = config(client_mode::poll);
  c.poll_interval = 0s;
  bench_pair p(n, c);
  p.start(time_point{});
  p.run_until(time_point{} + 15s);
  ASSERT_EQ(p.ext2_sent.size(), 2u);
  EXPECT_EQ(p.ext2_sent[0], time_point{} + 7s);
}

TEST(client_session, jitter_waits_between_one_and_two_intervals) {
  auto c = config(client_mode::poll);
  c.poll_jitter = true;
  c.seed = 99;
  bench_pair p({}, c);
  p.start(time_point{});
  p.run_until(time_point{} + 2h);
  ASSERT_GT(p.ext2_sent.size(), 100u);
  duration shortest = 1h, longest = 0s;
  time_point prev{};
  for (auto t : p.ext2_sent) {
    shortest = std::min(shortest, t - prev);
    longest = std::max(longest, t - prev);
    EXPECT_GE(t - prev, 5s);
    EXPECT_LE(t - prev, 10s);
    prev = t;
  }
  EXPECT_LT(shortest, 5500ms);  // the spread is really used
  EXPECT_GT(longest, 9500ms);
}

TEST(client_session, poll_finds_events_and_measures_latency) {
  bench_pair p({}, config(client_mode::poll));
  p.start(time_point{});
  p.core.inject_event(time_point{} + 2s, p.core.mailbox("/o=nudge/cn=Recipients/cn=bob"));
  p.run_until(time_point{} + 6s);
  EXPECT_EQ(p.metrics.counter(nudge::protocol::emsmdb::counter::events_fetched), 1u);
  EXPECT_EQ(p.metrics.latency.max(), 3s);  // created at 2 s, fetched by the poll at 5 s
  EXPECT_EQ(p.metrics.events_by_path[static_cast<std::size_t>(delivery_path::poll)], 1u);
}

TEST(client_session, push_polls_until_first_ping_then_fetches_on_each_ping) {
  bench_pair p({}, config(client_mode::push));
  p.start(time_point{});
  EXPECT_TRUE(p.client.ready());
  p.run_until(time_point{} + 11s);
  EXPECT_EQ(p.metrics.counter(nudge::protocol::emsmdb::counter::polls), 2u);  // still polling: no ping yet
  const auto mb = p.core.mailbox("/o=nudge/cn=Recipients/cn=bob");
  p.core.inject_event(time_point{} + 12s, mb);
  p.pump(time_point{} + 12s);
  EXPECT_EQ(p.metrics.counter(nudge::protocol::emsmdb::counter::pings_matched), 1u);
  EXPECT_EQ(p.metrics.counter(nudge::protocol::emsmdb::counter::events_fetched), 1u);
  EXPECT_EQ(p.metrics.latency.max(), 0s);
  EXPECT_TRUE(p.client.push_confirmed());
  p.run_until(time_point{} + 60s);
  EXPECT_EQ(p.metrics.counter(nudge::protocol::emsmdb::counter::polls), 2u);  // push works: no more polling
  EXPECT_EQ(p.metrics.events_by_path[static_cast<std::size_t>(delivery_path::push)], 1u);
}

TEST(client_session, forged_or_random_datagrams_never_trigger_a_fetch) {
  bench_pair p({}, config(client_mode::push));
  p.start(time_point{});
  const auto fetches = p.metrics.counter(nudge::protocol::emsmdb::counter::fetches);
  const protocol::byte_buffer forged = {1, 2, 3, 4, 5, 6, 7, 9};
  const protocol::byte_buffer prefix = {1, 2, 3, 4};
  const protocol::byte_buffer longer = {1, 2, 3, 4, 5, 6, 7, 8, 0};
  for (const auto& d : {forged, prefix, longer, protocol::byte_buffer{}}) {
    p.client.receive_datagram(time_point{} + 1s, ip_endpoint::v4(127, 0, 0, 66, 1), d);
    p.pump(time_point{} + 1s);
  }
  EXPECT_EQ(p.metrics.counter(nudge::protocol::emsmdb::counter::fetches), fetches);
  EXPECT_EQ(p.metrics.counter(nudge::protocol::emsmdb::counter::datagrams_ignored), 4u);
  EXPECT_FALSE(p.client.push_confirmed());
  // ... and the listener still works for the real one.
  p.core.inject_event(time_point{} + 2s, p.core.mailbox("/o=nudge/cn=Recipients/cn=bob"));
  p.pump(time_point{} + 2s);
  EXPECT_EQ(p.metrics.counter(nudge::protocol::emsmdb::counter::events_fetched), 1u);
}

TEST(client_session, async_waits_fetches_and_rewaits) {
  bench_pair p({}, config(client_mode::async));
  p.start(time_point{});
  EXPECT_TRUE(p.client.ready());
  EXPECT_EQ(p.metrics.counter(nudge::protocol::emsmdb::counter::async_waits), 1u);
  const auto mb = p.core.mailbox("/o=nudge/cn=Recipients/cn=bob");
  for (int i = 1; i <= 3; ++i) {
    p.core.inject_event(time_point{} + std::chrono::seconds(10 * i), mb);
    p.pump(time_point{} + std::chrono::seconds(10 * i));
  }
  EXPECT_EQ(p.metrics.counter(nudge::protocol::emsmdb::counter::events_fetched), 3u);
  EXPECT_EQ(p.metrics.counter(nudge::protocol::emsmdb::counter::async_notified), 3u);
  EXPECT_EQ(p.metrics.counter(nudge::protocol::emsmdb::counter::async_waits), 4u);
  EXPECT_EQ(p.metrics.counter(nudge::protocol::emsmdb::counter::polls), 0u);
  p.run_until(time_point{} + 30s + 5min);
  EXPECT_EQ(p.metrics.counter(nudge::protocol::emsmdb::counter::async_timeouts), 1u);  // the hold expired, and the client waited again
  EXPECT_EQ(p.metrics.counter(nudge::protocol::emsmdb::counter::async_waits), 5u);
}

TEST(client_session, async_falls_back_to_polling_when_rejected) {
  notifier::notifier_config n;
  n.async_enabled = false;
  bench_pair p(n, config(client_mode::async));
  p.start(time_point{});
  p.run_until(time_point{} + 11s);
  EXPECT_EQ(p.metrics.counter(nudge::protocol::emsmdb::counter::polls), 2u);
}

TEST(client_session, rop_pending_makes_the_client_fetch_again) {
  bench_pair p({}, config(client_mode::poll));
  p.start(time_point{});
  const auto mb = p.core.mailbox("/o=nudge/cn=Recipients/cn=bob");
  for (int i = 0; i < 1000; ++i) p.core.inject_event(time_point{} + 1s, mb);  // more than one 32 KiB response holds
  p.run_until(time_point{} + 5s);
  EXPECT_EQ(p.metrics.counter(nudge::protocol::emsmdb::counter::events_fetched), 1000u);
  EXPECT_GE(p.metrics.counter(nudge::protocol::emsmdb::counter::pending_seen), 1u);
  EXPECT_EQ(p.metrics.counter(nudge::protocol::emsmdb::counter::polls), 1u);
  EXPECT_GE(p.metrics.counter(nudge::protocol::emsmdb::counter::fetches), 1u);
}

TEST(client_session, eager_acks_count_exactly_what_lazy_acks_count) {
  struct recorder : session_tap {
    std::vector<time_point> at;
    void pure_ack(time_point t, channel, metrics::direction) override { at.push_back(t); }
  };
  auto run = [](bool eager, recorder& tap) {
    auto c = config(client_mode::push);
    c.eager_acks = eager;
    auto p = std::make_unique<bench_pair>(notifier::notifier_config{}, c);
    p->client.set_tap(&tap);
    p->start(time_point{});
    const auto mb = p->core.mailbox("/o=nudge/cn=Recipients/cn=bob");
    for (int i = 1; i <= 5; ++i) {
      const time_point t = time_point{} + std::chrono::seconds(13 * i);
      p->run_until(t);
      p->core.inject_event(t, mb);
      p->pump(t);
    }
    p->run_until(time_point{} + 2min);
    p->client.finish(time_point{} + 2min);
    return p->metrics.traffic;
  };
  recorder lazy_tap, eager_tap;
  const auto lazy = run(false, lazy_tap);
  const auto eager = run(true, eager_tap);
  EXPECT_EQ(lazy, eager);
  EXPECT_GT(eager_tap.at.size(), 5u);
  EXPECT_TRUE(std::is_sorted(eager_tap.at.begin(), eager_tap.at.end()));  // reported in time order
  auto sorted = lazy_tap.at;
  std::sort(sorted.begin(), sorted.end());
  EXPECT_EQ(sorted, eager_tap.at);  // the same ACKs at the same times
}

TEST(client_session, events_queued_before_registration_are_pinged_after_the_register_response) {
  bench_pair p({}, config(client_mode::push));
  p.core.inject_event(time_point{}, p.core.mailbox("/o=nudge/cn=Recipients/cn=bob"));
  p.start(time_point{});
  EXPECT_EQ(p.metrics.counter(nudge::protocol::emsmdb::counter::datagrams_ignored), 0u);  // the ping did not overtake the response
  EXPECT_EQ(p.metrics.counter(nudge::protocol::emsmdb::counter::pings_matched), 1u);
  EXPECT_EQ(p.metrics.counter(nudge::protocol::emsmdb::counter::events_fetched), 1u);
}

TEST(client_session, fragmented_responses_are_joined_and_counted_once) {
  const auto mb_name = "/o=nudge/cn=Recipients/cn=bob";
  auto run = [&](std::size_t refragment_at) {
    auto p = std::make_unique<bench_pair>(notifier::notifier_config{}, config(client_mode::poll));
    p->refragment_at = refragment_at;
    p->start(time_point{});
    const auto mb = p->core.mailbox(mb_name);
    for (int i = 0; i < 300; ++i) p->core.inject_event(time_point{} + 1s, mb);  // several full responses
    p->run_until(time_point{} + 12s);
    return p;
  };
  auto whole = run(0);
  auto cut = run(protocol::dcerpc::must_recv_frag_size);
  EXPECT_GT(cut->fragments_delivered, 10u);
  EXPECT_EQ(cut->metrics.counter(nudge::protocol::emsmdb::counter::protocol_errors), 0u);
  EXPECT_FALSE(cut->client.failed()) << cut->client.failure();
  EXPECT_EQ(cut->metrics.counter(nudge::protocol::emsmdb::counter::events_fetched), 300u);
  EXPECT_EQ(cut->metrics.counter(nudge::protocol::emsmdb::counter::events_fetched), whole->metrics.counter(nudge::protocol::emsmdb::counter::events_fetched));
  EXPECT_EQ(cut->metrics.counter(nudge::protocol::emsmdb::counter::fetches), whole->metrics.counter(nudge::protocol::emsmdb::counter::fetches));
  // One message per response, whatever the fragments; the extra fragment headers cost bytes.
  for (auto kind : {protocol::emsmdb::message_kind::poll, protocol::emsmdb::message_kind::fetch}) {
    const auto& a = whole->metrics.traffic.cell(kind, metrics::direction::to_client);
    const auto& b = cut->metrics.traffic.cell(kind, metrics::direction::to_client);
    EXPECT_EQ(a.messages, b.messages);
    if (kind == protocol::emsmdb::message_kind::fetch) {
      EXPECT_GT(b.payload_bytes, a.payload_bytes);
    }
  }
}
