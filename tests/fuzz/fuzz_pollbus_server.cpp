// fuzz_pollbus_server: the polling bus's server core (protocols/pollbus/cores)
// fed a script of arbitrary bytes and well-formed polls on a few connections,
// events, closes and timers with increasing time, no sockets.
//
// Fatal (abort): memory errors, UB, a send or close on a connection the core
// does not hold, bytes to a client that the project's own HTTP response reader
// refuses, a deadline left in the past after a timer, and a hostile
// connection's effect on another: a well-formed poll on a clean connection
// always gets its 200 answer.
#include <fuzzer/FuzzedDataProvider.h>

#include <map>
#include <string>
#include <variant>
#include <vector>

#include "fuzz_common.hpp"
#include "nudge/http/reader.hpp"
#include "nudge/http/writer.hpp"
#include "nudge/pollbus/client_core.hpp"
#include "nudge/pollbus/http_binding.hpp"
#include "nudge/pollbus/server_core.hpp"

using namespace nudge;
using namespace nudge::pollbus;

namespace {

struct peer {
  bool open = true;
  bool clean = true;  // only well-formed requests so far
  http::response_reader reader;
  std::size_t answers = 0;
};

void collect(server_core& s, std::map<engine::connection_id, peer>& peers) {
  auto acts = std::move(s.actions());
  s.actions().clear();
  for (auto& a : acts) {
    if (auto* x = std::get_if<engine::send>(&a)) {
      const auto it = peers.find(x->conn);
      NUDGE_FUZZ_CHECK(it != peers.end() && it->second.open, "send on a connection the core does not hold");
      it->second.reader.feed(x->bytes);
      for (auto d = it->second.reader.next(); !d.need_more(); d = it->second.reader.next()) {
        NUDGE_FUZZ_CHECK(d.complete(), "the server's bytes are not an HTTP response");
        if (d.value.status != 100) ++it->second.answers;
        if (it->second.clean && d.value.status != 100)
          NUDGE_FUZZ_CHECK(d.value.status == 200, "a well-formed poll was not answered 200");
      }
    } else if (auto* c = std::get_if<engine::close>(&a)) {
      const auto it = peers.find(c->conn);
      NUDGE_FUZZ_CHECK(it != peers.end(), "close of an unknown connection");
      it->second.open = false;
    }
  }
}

std::string poll_bytes(FuzzedDataProvider& in) {
  message m;
  const auto agent = in.ConsumeIntegralInRange<std::uint8_t>(0, 3);
  m.agent_id = agent_id_of("mailbox" + std::to_string(agent));
  m.timestamp_ms = 63386877600000;
  m.type = in.ConsumeBool() ? message_type::register_agent : message_type::empty;
  m.user_info = "mailbox" + std::to_string(agent);
  m.computer_name = "PC";
  request_options o;
  static constexpr const char* paths[] = {"/Bus.asmx", "/fixed/Bus.asmx", "/activity/Bus.asmx", "/load/Bus.asmx"};
  o.path = paths[in.ConsumeIntegralInRange<std::uint8_t>(0, 3)];
  o.expect_continue = in.ConsumeBool();
  const auto enc = in.ConsumeBool() ? encoding::json : encoding::soap;
  const auto bytes = http::serialize(poll_request(m, enc, o));
  return std::string(bytes.begin(), bytes.end());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  FuzzedDataProvider in(data, size);
  server_config cfg;
  cfg.limits = {1024, 4096};
  cfg.idle_timeout = std::chrono::seconds(30);
  cfg.load_budget = 1.0;
  server_core s(cfg);
  time_point now{};
  s.start(now);
  s.actions().clear();
  std::map<engine::connection_id, peer> peers;
  engine::connection_id next = 1;
  while (in.remaining_bytes() > 0) {
    const auto op = in.ConsumeIntegralInRange<std::uint8_t>(0, 6);
    const engine::connection_id conn = peers.empty() ? 0 : 1 + in.ConsumeIntegralInRange<std::uint64_t>(0, next - 2);
    auto it = peers.find(conn);
    switch (op) {
      case 0:  // a new connection
        if (next > 8) break;
        peers[next];
        s.handle(now, engine::accepted{0, next, engine::ip_endpoint::v4(10, 0, 0, 2, 5000)});
        ++next;
        break;
      case 1: {  // arbitrary bytes: the connection is no longer clean
        if (it == peers.end() || !it->second.open) break;
        const auto bytes = in.ConsumeBytes<std::uint8_t>(in.ConsumeIntegralInRange<std::size_t>(0, 2048));
        it->second.clean = false;
        s.handle(now, engine::stream_bytes{conn, bytes});
        break;
      }
      case 2: {  // a well-formed poll, in up to two pieces
        if (it == peers.end() || !it->second.open) break;
        const std::string req = poll_bytes(in);
        const auto cut = in.ConsumeIntegralInRange<std::size_t>(0, req.size());
        const std::vector<std::uint8_t> a(req.begin(), req.begin() + static_cast<std::ptrdiff_t>(cut));
        const std::vector<std::uint8_t> b(req.begin() + static_cast<std::ptrdiff_t>(cut), req.end());
        s.handle(now, engine::stream_bytes{conn, a});
        collect(s, peers);
        if (it->second.open) s.handle(now, engine::stream_bytes{conn, b});
        break;
      }
      case 3:  // the peer closes
        if (it == peers.end() || !it->second.open) break;
        it->second.open = false;
        s.handle(now, engine::closed{conn});
        break;
      case 4: s.inject_event(now, "mailbox" + std::to_string(in.ConsumeIntegralInRange<int>(0, 4))); break;
      case 5:
        now += std::chrono::milliseconds(in.ConsumeIntegralInRange<std::uint32_t>(0, 60000));
        if (s.next_deadline() <= now) {
          s.handle(now, engine::timer{});
          collect(s, peers);
          NUDGE_FUZZ_CHECK(s.next_deadline() > now, "a deadline left in the past after a timer");
        }
        break;
      default: {
        bool truncated = false;
        (void)s.backlog(4, truncated);
        (void)s.stats();
        break;
      }
    }
    collect(s, peers);
  }
  return 0;
}
