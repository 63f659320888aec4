// fuzz_activesync_server: the ActiveSync server core (protocols/activesync)
// fed a script of arbitrary bytes, well-formed Pings (with any heartbeat,
// empty bodies included) and Syncs on a few connections, events, closes and
// timers with increasing time, no sockets.
//
// Fatal (abort): memory errors, UB, a send or close on a connection the core
// does not hold, bytes the project's own HTTP response reader refuses, a
// deadline left in the past after a timer, and a hostile connection's effect
// on another: well-formed requests on a clean connection only get 200 answers
// whose WBXML body reads as a Ping or Sync answer.
#include <fuzzer/FuzzedDataProvider.h>

#include <map>
#include <string>
#include <variant>
#include <vector>

#include "fuzz_common.hpp"
#include "nudge/activesync/client_core.hpp"
#include "nudge/activesync/messages.hpp"
#include "nudge/activesync/server_core.hpp"
#include "nudge/http/reader.hpp"
#include "nudge/http/writer.hpp"

using namespace nudge;
using namespace nudge::activesync;

namespace {

struct peer {
  bool open = true;
  bool clean = true;  // only well-formed requests so far
  http::response_reader reader;
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
        if (!it->second.clean) continue;
        NUDGE_FUZZ_CHECK(d.value.status == 200, "a well-formed request was not answered 200");
        const auto body = protocol::as_bytes(d.value.body);
        NUDGE_FUZZ_CHECK(decode_ping_response(body).complete() || decode_sync_response(body).complete(),
                         "a 200 answer that is neither a Ping nor a Sync answer");
      }
    } else if (auto* c = std::get_if<engine::close>(&a)) {
      const auto it = peers.find(c->conn);
      NUDGE_FUZZ_CHECK(it != peers.end(), "close of an unknown connection");
      it->second.open = false;
    }
  }
}

std::string request_bytes(FuzzedDataProvider& in) {
  device_identity d;
  d.host = "mail.example.com";
  d.user = "user" + std::to_string(in.ConsumeIntegralInRange<int>(0, 3));
  d.device_id = device_id_of(d.user + std::to_string(in.ConsumeIntegralInRange<int>(0, 1)));
  byte_buffer body;
  std::string cmd = "Ping";
  switch (in.ConsumeIntegralInRange<int>(0, 3)) {
    case 0: break;  // an empty Ping: the cached heartbeat and folders
    case 1: {
      ping_request p;
      if (in.ConsumeBool()) p.heartbeat_s = in.ConsumeIntegral<std::uint32_t>();
      if (in.ConsumeBool()) {
        p.has_folders = true;
        const int n = in.ConsumeIntegralInRange<int>(0, 3);
        for (int i = 0; i < n; ++i) p.folders.push_back({in.ConsumeBool() ? "5" : "6", "Email"});
      }
      body = encode(p);
      break;
    }
    case 2: {
      ping_request p;
      p.heartbeat_s = in.ConsumeIntegralInRange<std::uint32_t>(60, 3540);
      p.has_folders = true;
      p.folders.push_back({"5", "Email"});
      body = encode(p);
      break;
    }
    default:
      cmd = "Sync";
      body = encode(sync_request{std::to_string(in.ConsumeIntegral<std::uint8_t>()), in.ConsumeBool() ? "5" : "6",
                                 in.ConsumeIntegralInRange<std::uint32_t>(1, 30)});
      break;
  }
  const auto bytes = http::serialize(command_request(cmd, d, body));
  return std::string(bytes.begin(), bytes.end());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  FuzzedDataProvider in(data, size);
  server_config cfg;
  cfg.limits = {1024, 4096};
  cfg.idle_timeout = std::chrono::seconds(30);
  cfg.max_folders = 2;
  cfg.max_pending = 4;
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
      case 0:
        if (next > 8) break;
        peers[next];
        s.handle(now, engine::accepted{0, next, engine::ip_endpoint::v4(10, 0, 0, 2, 5000)});
        ++next;
        break;
      case 1: {
        if (it == peers.end() || !it->second.open) break;
        const auto bytes = in.ConsumeBytes<std::uint8_t>(in.ConsumeIntegralInRange<std::size_t>(0, 2048));
        it->second.clean = false;
        s.handle(now, engine::stream_bytes{conn, bytes});
        break;
      }
      case 2: {
        if (it == peers.end() || !it->second.open) break;
        const std::string req = request_bytes(in);
        const auto cut = in.ConsumeIntegralInRange<std::size_t>(0, req.size());
        const std::vector<std::uint8_t> a(req.begin(), req.begin() + static_cast<std::ptrdiff_t>(cut));
        const std::vector<std::uint8_t> b(req.begin() + static_cast<std::ptrdiff_t>(cut), req.end());
        s.handle(now, engine::stream_bytes{conn, a});
        collect(s, peers);
        if (it->second.open) s.handle(now, engine::stream_bytes{conn, b});
        break;
      }
      case 3:
        if (it == peers.end() || !it->second.open) break;
        it->second.open = false;
        s.handle(now, engine::closed{conn});
        break;
      case 4: s.inject_event(now, "user" + std::to_string(in.ConsumeIntegralInRange<int>(0, 4))); break;
      case 5:
        now += std::chrono::milliseconds(in.ConsumeIntegralInRange<std::uint32_t>(0, 4000000));
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
