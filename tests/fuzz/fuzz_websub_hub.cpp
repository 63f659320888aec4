// fuzz_websub_hub: the WebSub hub core (protocols/websub) fed a script of
// arbitrary bytes and well-formed subscribe, unsubscribe and publish requests
// on a few inbound connections; the callbacks it dials connect or are
// refused, answer with arbitrary bytes, the challenge or a status; events,
// closes and timers with increasing time. No sockets.
//
// Fatal (abort): memory errors, UB, a send or close on a connection the core
// does not hold, bytes to a client that the project's own HTTP response
// reader refuses, a dial outside loopback, more callbacks open than
// max_outgoing, more subscriptions than max_subscriptions, a well-formed
// request on a clean connection answered other than the spec allows, and a
// deadline left in the past after a timer.
#include <fuzzer/FuzzedDataProvider.h>

#include <map>
#include <string>
#include <variant>
#include <vector>

#include "fuzz_common.hpp"
#include "nudge/http/reader.hpp"
#include "nudge/http/writer.hpp"
#include "nudge/websub/form.hpp"
#include "nudge/websub/hub_core.hpp"

using namespace nudge;
using namespace nudge::websub;

namespace {

const ip_endpoint hub_at = ip_endpoint::v4(127, 0, 0, 1, 7000);

struct inbound_peer {
  bool open = true;
  bool clean = true;
  http::response_reader reader;
};
struct callback_peer {
  bool open = true;
  bool connected = false;
  http::request_reader reader;
  std::string challenge;  // of the last verification read
};

struct world {
  hub_core* hub = nullptr;
  std::map<engine::connection_id, inbound_peer> in;
  std::map<engine::connection_id, callback_peer> out;
  std::size_t max_outgoing = 0;
  std::size_t max_subscriptions = 0;

  void collect() {
    auto acts = std::move(hub->actions());
    hub->actions().clear();
    for (auto& a : acts) {
      if (auto* x = std::get_if<engine::send>(&a)) {
        if (engine::is_outgoing(x->conn)) {
          const auto it = out.find(x->conn);
          NUDGE_FUZZ_CHECK(it != out.end() && it->second.open && it->second.connected, "send on a callback not held");
          it->second.reader.feed(x->bytes);
          for (auto d = it->second.reader.next(); d.complete(); d = it->second.reader.next()) {
            const auto q = d.value.target.find('?');
            if (q == std::string::npos) continue;
            const auto f = decode_form(std::string_view(d.value.target).substr(q + 1), {1 << 20, 256});
            NUDGE_FUZZ_CHECK(f.complete(), "the hub's verification query does not decode");
            it->second.challenge = std::string(f.value.find("hub.challenge").value_or(""));
          }
          continue;
        }
        const auto it = in.find(x->conn);
        NUDGE_FUZZ_CHECK(it != in.end() && it->second.open, "send on a connection the core does not hold");
        it->second.reader.feed(x->bytes);
        for (auto d = it->second.reader.next(); !d.need_more(); d = it->second.reader.next()) {
          NUDGE_FUZZ_CHECK(d.complete(), "the hub's bytes are not an HTTP response");
          const int st = d.value.status;
          if (it->second.clean && st != 100)
            NUDGE_FUZZ_CHECK(st == 202 || st == 204 || st == 403 || st == 404 || st == 429,
                             "a well-formed request got an answer the spec does not allow");
        }
      } else if (auto* c = std::get_if<engine::close>(&a)) {
        if (engine::is_outgoing(c->conn)) {
          const auto it = out.find(c->conn);
          NUDGE_FUZZ_CHECK(it != out.end() && it->second.open, "close of a callback not held");
          it->second.open = false;
        } else {
          const auto it = in.find(c->conn);
          NUDGE_FUZZ_CHECK(it != in.end(), "close of an unknown connection");
          it->second.open = false;
        }
      } else if (auto* k = std::get_if<engine::connect>(&a)) {
        NUDGE_FUZZ_CHECK(engine::is_outgoing(k->conn), "a dial without outgoing_bit");
        NUDGE_FUZZ_CHECK(k->to.is_loopback(), "a dial outside loopback");
        NUDGE_FUZZ_CHECK(out.find(k->conn) == out.end(), "a dial reusing an id");
        out[k->conn];
      }
    }
    NUDGE_FUZZ_CHECK(hub->subscription_count() <= max_subscriptions, "more subscriptions than the cap");
  }
};

std::string request_bytes(FuzzedDataProvider& in) {
  form f;
  const auto what = in.ConsumeIntegralInRange<int>(0, 2);
  const std::string topic = topic_url(hub_at, "mailbox" + std::to_string(in.ConsumeIntegralInRange<int>(0, 3)));
  if (what == 2) {
    f.add("hub.mode", "publish");
    f.add("hub.url", topic);
  } else {
    f.add("hub.mode", what == 0 ? "subscribe" : "unsubscribe");
    f.add("hub.topic", topic);
    const bool outside = in.ConsumeIntegralInRange<int>(0, 7) == 0;
    f.add("hub.callback", std::string(outside ? "http://10.0.0.2:" : "http://127.0.0.2:") +
                              std::to_string(in.ConsumeIntegralInRange<int>(1, 4)) + "/cb");
    f.add("hub.lease_seconds", std::to_string(in.ConsumeIntegralInRange<int>(0, 100000)));
    if (in.ConsumeBool()) f.add("hub.secret", "s3cret");
  }
  http::request r;
  r.method = "POST";
  r.target = "/hub";
  r.headers.add("Host", "h");
  r.headers.add("Content-Type", "application/x-www-form-urlencoded");
  r.body = encode_form(f);
  http::set_content_length(r);
  const auto b = http::serialize(r);
  return std::string(b.begin(), b.end());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  FuzzedDataProvider in(data, size);
  hub_config cfg;
  cfg.limits = {1024, 4096};
  cfg.max_subscriptions = 6;
  cfg.max_outgoing = 4;
  cfg.retry_attempts = 3;
  cfg.retry_base = std::chrono::seconds(1);
  cfg.min_lease = std::chrono::seconds(5);
  cfg.max_lease = std::chrono::seconds(60);
  hub_core s(cfg);
  world w;
  w.hub = &s;
  w.max_outgoing = cfg.max_outgoing;
  w.max_subscriptions = cfg.max_subscriptions;
  time_point now{};
  s.start(now);
  s.actions().clear();
  s.handle(now, engine::listening{0, hub_at});
  w.collect();
  engine::connection_id next = 1;
  while (in.remaining_bytes() > 0) {
    const auto op = in.ConsumeIntegralInRange<std::uint8_t>(0, 9);
    const engine::connection_id conn = w.in.empty() ? 0 : 1 + in.ConsumeIntegralInRange<std::uint64_t>(0, next - 2);
    const auto it = w.in.find(conn);
    // A callback the hub dialled, by position.
    auto pick_out = [&]() -> std::map<engine::connection_id, callback_peer>::iterator {
      if (w.out.empty()) return w.out.end();
      auto o = w.out.begin();
      std::advance(o, in.ConsumeIntegralInRange<std::size_t>(0, w.out.size() - 1));
      return o;
    };
    switch (op) {
      case 0:
        if (next > 8) break;
        w.in[next];
        s.handle(now, engine::accepted{0, next, ip_endpoint::v4(127, 0, 0, 2, 5000)});
        ++next;
        break;
      case 1: {
        if (it == w.in.end() || !it->second.open) break;
        const auto bytes = in.ConsumeBytes<std::uint8_t>(in.ConsumeIntegralInRange<std::size_t>(0, 2048));
        it->second.clean = false;
        s.handle(now, engine::stream_bytes{conn, bytes});
        break;
      }
      case 2: {
        if (it == w.in.end() || !it->second.open) break;
        const std::string req = request_bytes(in);
        const std::vector<std::uint8_t> bytes(req.begin(), req.end());
        s.handle(now, engine::stream_bytes{conn, bytes});
        break;
      }
      case 3:
        if (it == w.in.end() || !it->second.open) break;
        it->second.open = false;
        s.handle(now, engine::closed{conn});
        break;
      case 4: {  // a dial completes, or not
        auto o = pick_out();
        if (o == w.out.end() || !o->second.open || o->second.connected) break;
        if (in.ConsumeBool()) {
          o->second.connected = true;
          s.handle(now, engine::connected{o->first, hub_at});
        } else {
          o->second.open = false;
          s.handle(now, engine::refused{o->first, "no route"});
        }
        break;
      }
      case 5: {  // a callback answers
        auto o = pick_out();
        if (o == w.out.end() || !o->second.open || !o->second.connected) break;
        std::string answer;
        switch (in.ConsumeIntegralInRange<int>(0, 2)) {
          case 0: answer = in.ConsumeRandomLengthString(512); break;
          case 1: {
            http::response r;
            r.body = o->second.challenge;
            http::set_content_length(r);
            const auto b = http::serialize(r);
            answer.assign(b.begin(), b.end());
            break;
          }
          default: {
            http::response r;
            r.status = in.PickValueInArray({200, 204, 404, 410, 500});
            r.reason = std::string(http::reason_phrase(r.status));
            http::set_content_length(r);
            const auto b = http::serialize(r);
            answer.assign(b.begin(), b.end());
          }
        }
        const std::vector<std::uint8_t> bytes(answer.begin(), answer.end());
        s.handle(now, engine::stream_bytes{o->first, bytes});
        break;
      }
      case 6: {
        auto o = pick_out();
        if (o == w.out.end() || !o->second.open || !o->second.connected) break;
        o->second.open = false;
        s.handle(now, engine::closed{o->first});
        break;
      }
      case 7: s.inject_event(now, "mailbox" + std::to_string(in.ConsumeIntegralInRange<int>(0, 4))); break;
      case 8:
        now += std::chrono::milliseconds(in.ConsumeIntegralInRange<std::uint32_t>(0, 60000));
        if (s.next_deadline() <= now) {
          s.handle(now, engine::timer{});
          w.collect();
          NUDGE_FUZZ_CHECK(s.next_deadline() > now, "a deadline left in the past after a timer");
        }
        break;
      default: (void)s.stats(); break;
    }
    w.collect();
    std::size_t open_out = 0;
    for (const auto& [id, p] : w.out) open_out += p.open ? 1 : 0;
    NUDGE_FUZZ_CHECK(open_out <= w.max_outgoing, "more callbacks open than max_outgoing");
  }
  return 0;
}
