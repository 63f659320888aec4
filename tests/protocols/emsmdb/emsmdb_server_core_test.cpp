// The notifier core through the session contract: what a driver sees (ids,
// actions) when it runs emsmdb_server_core, rather than notifier_core itself.
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <variant>
#include <vector>

#include "nudge/notifier/emsmdb_server_core.hpp"
#include "nudge/protocol/dcerpc.hpp"
#include "nudge/protocol/identifiers.hpp"

using namespace nudge;
using namespace nudge::protocol;
using namespace nudge::notifier;

namespace {

std::vector<engine::action> take(engine::session& s) {
  std::vector<engine::action> out;
  out.swap(s.actions());
  return out;
}

byte_buffer bind_request() {
  dcerpc::bind_pdu b;
  b.call_id = 1;
  dcerpc::presentation_context ctx;
  ctx.abstract_syntax = emsmdb_syntax();
  ctx.transfer_syntaxes.push_back(ndr_syntax());
  b.contexts.push_back(ctx);
  byte_buffer pdu;
  dcerpc::encode(pdu, b);
  return pdu;
}

emsmdb_server_config config(std::uint16_t tcp_port, std::uint16_t udp_port) {
  emsmdb_server_config c;
  c.core.tcp_port = tcp_port;
  c.udp_port = udp_port;
  return c;
}

const ip_endpoint client = ip_endpoint::v4(127, 0, 0, 2, 40000);

}  // namespace

TEST(EmsmdbServerCore, StartAsksForTheConfiguredListenerAndSocket) {
  emsmdb_server_core core(config(7777, 7778));
  core.start(time_point{});
  const auto acts = take(core);
  ASSERT_EQ(acts.size(), 2u);
  const auto* l = std::get_if<engine::listen>(&acts[0]);
  ASSERT_NE(l, nullptr);
  EXPECT_EQ(l->port, 7777);
  EXPECT_EQ(l->listener, emsmdb_server_core::rpc_listener);
  const auto* u = std::get_if<engine::bind_udp>(&acts[1]);
  ASSERT_NE(u, nullptr);
  EXPECT_EQ(u->port, 7778);
  EXPECT_EQ(u->socket, emsmdb_server_core::ping_socket);
}

TEST(EmsmdbServerCore, AnswersOnTheDriversConnectionIdAndNamesTheBoundPort) {
  emsmdb_server_core core(config(0, 0));
  core.start(time_point{});
  (void)take(core);
  core.handle(time_point{}, engine::listening{emsmdb_server_core::rpc_listener, ip_endpoint::v4(127, 0, 0, 1, 41234)});
  const engine::connection_id driver_id = 12345;
  core.handle(time_point{}, engine::accepted{emsmdb_server_core::rpc_listener, driver_id, client});
  const byte_buffer bind = bind_request();
  core.handle(time_point{}, engine::stream_bytes{driver_id, bind});
  const auto acts = take(core);
  ASSERT_EQ(acts.size(), 1u);
  const auto* s = std::get_if<engine::send>(&acts[0]);
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(s->conn, driver_id);
  const auto pdu = dcerpc::decode_pdu(s->bytes);
  ASSERT_TRUE(pdu.complete());
  const auto* ack = std::get_if<dcerpc::bind_ack_pdu>(&pdu.value);
  ASSERT_NE(ack, nullptr);
  EXPECT_EQ(ack->secondary_address, "41234");
  EXPECT_EQ(core.core().open_connections(), 1u);
}

TEST(EmsmdbServerCore, ThePeersCloseReachesTheCoreAndLaterBytesAreIgnored) {
  emsmdb_server_core core(config(0, 0));
  core.handle(time_point{}, engine::accepted{0, 7, client});
  core.handle(time_point{}, engine::closed{7});
  EXPECT_EQ(core.core().open_connections(), 0u);
  const byte_buffer bind = bind_request();
  core.handle(time_point{}, engine::stream_bytes{7, bind});
  EXPECT_TRUE(take(core).empty());
}

TEST(EmsmdbServerCore, MalformedBytesCloseTheDriversConnection) {
  emsmdb_server_core core(config(0, 0));
  core.handle(time_point{}, engine::accepted{0, 9, client});
  const byte_buffer junk(64, 0xEE);
  core.handle(time_point{}, engine::stream_bytes{9, junk});
  const auto acts = take(core);
  const auto it = std::find_if(acts.begin(), acts.end(),
                               [](const engine::action& a) { return std::holds_alternative<engine::close>(a); });
  ASSERT_NE(it, acts.end());
  EXPECT_EQ(std::get<engine::close>(*it).conn, 9u);
  EXPECT_FALSE(std::get<engine::close>(*it).reason.empty());
  EXPECT_EQ(core.core().open_connections(), 0u);
}

TEST(EmsmdbServerCore, InjectedEventsAreNumberedAndCountedInStats) {
  emsmdb_server_core core(config(0, 0));
  EXPECT_EQ(core.inject_event(time_point{}, "/o=nudge/cn=a"), 1u);
  EXPECT_EQ(core.inject_event(time_point{}, "/o=nudge/cn=b"), 2u);
  EXPECT_EQ(core.inject_event(time_point{}, "/o=nudge/cn=a"), 3u);
  const auto st = core.stats();
  auto value = [&](std::string_view name) {
    const auto it = std::find_if(st.begin(), st.end(), [&](const auto& p) { return p.first == name; });
    EXPECT_NE(it, st.end()) << name;
    return it == st.end() ? ~std::uint64_t{0} : it->second;
  };
  EXPECT_EQ(value("events_generated"), 3u);
  EXPECT_EQ(value("mailbox_count"), 2u);
  bool truncated = true;
  const auto backlog = core.backlog(1, truncated);
  ASSERT_EQ(backlog.size(), 1u);
  EXPECT_TRUE(truncated);
  EXPECT_EQ(backlog[0].mailbox, "/o=nudge/cn=a");
  EXPECT_EQ(backlog[0].pending, 2u);
}
