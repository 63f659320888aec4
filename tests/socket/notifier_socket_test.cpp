// The notifier's Asio driver on real loopback sockets, in-process: a raw DCE/RPC
// client binds, logs on, registers for push and gets its ping when the control
// port injects mail; garbage on every port must not disturb it.
#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <nlohmann/json.hpp>

#include <memory>
#include <thread>

#include "notifier_test_client.hpp"
#include "nudge/notifier/notifier_server.hpp"
#include "nudge/protocol/emsmdb.hpp"
#include "nudge/protocol/push_datagram.hpp"
#include "nudge/protocol/random.hpp"
#include "nudge/protocol/rop.hpp"
#include "nudge/protocol/sockaddr.hpp"

namespace nudge::test {
namespace {

using namespace protocol;
using notifier::notifier_server;
using notifier::server_config;

const ip_endpoint loopback_any = ip_endpoint::v4(127, 0, 0, 1, 0);
constexpr std::string_view alice = "/o=nudge/ou=First Administrative Group/cn=Recipients/cn=alice";

class notifier_socket_test : public ::testing::Test {
 protected:
  /// Lets a test shorten the core's timers before SetUp starts the server.
  virtual void configure(server_config&) {}

  void SetUp() override {
    server_config cfg;
    configure(cfg);
    cfg.tcp_listen = loopback_any;
    cfg.udp_bind = loopback_any;
    cfg.control = loopback_any;
    server_ = std::make_unique<notifier_server>(io_, cfg, notifier::stderr_log(true));
    auto error = server_->start();
    ASSERT_FALSE(error) << *error;
    // Read the bound ports before the io_context's thread owns the server.
    tcp_ = server_->tcp_endpoint();
    udp_ = server_->udp_endpoint();
    control_ = *server_->control_endpoint();
    thread_ = std::thread([this] { io_.run(); });
  }

  void TearDown() override {
    if (server_) boost::asio::post(io_, [this] { server_->stop(); });
    if (thread_.joinable()) thread_.join();
  }

  ip_endpoint tcp() const { return tcp_; }
  ip_endpoint udp() const { return udp_; }
  ip_endpoint control() const { return control_; }

  /// "OK <id>" for one EVENT line, as the event id.
  static std::optional<std::uint64_t> inject(tcp_client& ctl, std::string_view dn) {
    if (!ctl.send("EVENT " + std::string(dn) + "\n")) return std::nullopt;
    auto line = ctl.read_line();
    if (!line || line->rfind("OK ", 0) != 0) return std::nullopt;
    return std::stoull(line->substr(3));
  }

  static std::optional<nlohmann::json> query_stats(tcp_client& ctl) {
    if (!ctl.send("STATS\n")) return std::nullopt;
    auto line = ctl.read_line();
    if (!line) return std::nullopt;
    return nlohmann::json::parse(*line, nullptr, false);
  }

  /// Bind + EcDoConnectEx + EcRRegisterPushNotification on `client`, pings to `callback`.
  static void log_on_and_register(emsmdb_client& client, std::string_view dn, bytes_view context,
                                  const ip_endpoint& callback, emsmdb::context_handle& cxh) {
    ASSERT_TRUE(client.socket().connected());
    auto ack = client.bind();
    ASSERT_TRUE(ack);
    ASSERT_EQ(ack->results.size(), 1u);
    EXPECT_EQ(ack->results[0].result, 0);
    EXPECT_EQ(ack->results[0].transfer_syntax, ndr_syntax());
    byte_buffer keeper;
    auto connected = client.connect(dn, keeper);
    ASSERT_TRUE(connected);
    EXPECT_EQ(connected->return_code, ec::success);
    EXPECT_FALSE(connected->cxh.is_null());
    cxh = connected->cxh;
    auto reg = client.register_push(cxh, context, callback);
    ASSERT_TRUE(reg);
    EXPECT_EQ(reg->return_code, ec::success);
  }

  boost::asio::io_context io_;
  std::unique_ptr<notifier_server> server_;
  std::thread thread_;
  ip_endpoint tcp_, udp_, control_;
};

const std::string_view context_text = "nudge-ctx-alice!";  // 16 bytes, the maximum

TEST_F(notifier_socket_test, BindConnectRegisterAndGetThePingForAnInjectedEvent) {
  emsmdb_client client(tcp());
  ASSERT_TRUE(client.socket().connected());

  auto ack = client.bind();
  ASSERT_TRUE(ack) << "no bind_ack";
  ASSERT_EQ(ack->results.size(), 1u);
  EXPECT_EQ(ack->results[0].result, 0);
  EXPECT_EQ(ack->secondary_address, std::to_string(tcp().port));

  byte_buffer keeper;
  auto connected = client.connect(alice, keeper);
  ASSERT_TRUE(connected) << "no EcDoConnectEx response";
  EXPECT_EQ(connected->return_code, ec::success);
  EXPECT_EQ(connected->polls_max_ms, 60000u);
  EXPECT_EQ(connected->display_name, "alice");
  EXPECT_FALSE(connected->cxh.is_null());

  udp_endpoint_socket callback;
  auto reg = client.register_push(connected->cxh, as_bytes(context_text), callback.local());
  ASSERT_TRUE(reg);
  EXPECT_EQ(reg->return_code, ec::success);

  tcp_client ctl(control());
  ASSERT_TRUE(ctl.connected());
  const auto event_id = inject(ctl, alice);
  ASSERT_TRUE(event_id);

  const auto ping = callback.receive();
  ASSERT_TRUE(ping) << "no ping within " << generous.count() << " s";
  EXPECT_EQ(*ping, byte_buffer(context_text.begin(), context_text.end()));

  // The ping said "fetch": the details carry the injected event.
  const auto mails = client.fetch(connected->cxh);
  ASSERT_TRUE(mails);
  ASSERT_EQ(mails->size(), 1u);
  EXPECT_EQ((*mails)[0].event.id, *event_id);

  const auto stats = query_stats(ctl);
  ASSERT_TRUE(stats && stats->is_object());
  EXPECT_EQ((*stats)["sessions_opened"], 1);
  EXPECT_EQ((*stats)["registrations"], 1);
  EXPECT_EQ((*stats)["events_generated"], 1);
  EXPECT_EQ((*stats)["events_fetched"], 1);
  EXPECT_EQ((*stats)["datagrams_sent"], 1);
  EXPECT_EQ((*stats)["driver"]["udp_datagrams_sent"], 1);
  EXPECT_EQ((*stats)["open_connections"], 1);
}

TEST_F(notifier_socket_test, ControlPortAnswersPipelinedLinesInOrder) {
  tcp_client ctl(control());
  ASSERT_TRUE(ctl.connected());
  constexpr int n = 5000;
  std::string batch;
  for (int i = 0; i < n; ++i) batch += "EVENT /o=nudge/cn=user" + std::to_string(i % 50) + "\n";
  batch += "EVENTS 10 /o=nudge/cn=bulk\nbogus\nEVENTS 0 /o=nudge/cn=bulk\nEVENT\n";
  ASSERT_TRUE(ctl.send(batch));
  for (int i = 0; i < n; ++i) {
    auto line = ctl.read_line();
    ASSERT_TRUE(line) << "reply " << i << " missing";
    ASSERT_EQ(*line, "OK " + std::to_string(i + 1));
  }
  EXPECT_EQ(ctl.read_line(), "OK 5001 5010");
  EXPECT_EQ(ctl.read_line(), "ERR unknown command 'bogus' (expected EVENT, EVENTS, STATS, SERVICES or QUIT)");
  EXPECT_EQ(ctl.read_line(), "ERR EVENTS needs a count from 1 to 1000000 before the user DN, got '0'");
  EXPECT_EQ(ctl.read_line(), "ERR EVENT needs a user DN");

  const auto stats = query_stats(ctl);
  ASSERT_TRUE(stats && stats->is_object());
  EXPECT_EQ((*stats)["events_generated"], n + 10);
  EXPECT_EQ((*stats)["mailbox_count"], 51);
  EXPECT_EQ((*stats)["pending_mailboxes"].size(), 51u);
  EXPECT_EQ((*stats)["driver"]["control_errors"], 3);

  ASSERT_TRUE(ctl.send("QUIT\n"));
  EXPECT_EQ(ctl.read_line(), "OK bye");
  EXPECT_TRUE(ctl.closed_by_peer());
}

TEST_F(notifier_socket_test, GarbageOnEveryPortLeavesARegisteredSessionWorking) {
  emsmdb_client client(tcp());
  udp_endpoint_socket callback;
  emsmdb::context_handle cxh;
  log_on_and_register(client, alice, as_bytes(context_text), callback.local(), cxh);
  if (HasFatalFailure()) return;

  rng random(20240601);
  auto random_bytes = [&](std::size_t n) {
    byte_buffer b(n);
    for (auto& x : b) x = static_cast<std::uint8_t>(random.next());
    return b;
  };

  // Random bytes on fresh connections, closed at once.
  for (int i = 0; i < 20; ++i) {
    tcp_client bad(tcp());
    ASSERT_TRUE(bad.connected());
    bad.send(random_bytes(1 + random.next() % 4096));
  }
  // Truncated PDUs: a valid bind cut short, some left hanging open, some closed.
  byte_buffer bind_pdu;
  dcerpc::bind_pdu b;
  b.contexts.push_back({0, emsmdb_syntax(), {ndr_syntax()}});
  dcerpc::encode(bind_pdu, b);
  std::vector<std::unique_ptr<tcp_client>> hanging;
  for (std::size_t cut = 1; cut < bind_pdu.size(); cut += 7) {
    auto t = std::make_unique<tcp_client>(tcp());
    ASSERT_TRUE(t->connected());
    t->send(bytes_view(bind_pdu.data(), cut));
    if (cut % 2 == 1) hanging.push_back(std::move(t));
  }
  // A header promising a long PDU that never comes, a request before any bind,
  // a bound connection sending a response PDU (clients must not).
  {
    auto t = std::make_unique<tcp_client>(tcp());
    byte_buffer header(bind_pdu.begin(), bind_pdu.begin() + 16);
    header[8] = 0xFF;
    header[9] = 0xFF;
    t->send(header);
    hanging.push_back(std::move(t));
  }
  {
    emsmdb_client unbound(tcp());
    byte_buffer keeper;
    EXPECT_FALSE(unbound.connect(alice, keeper)) << "EcDoConnectEx before a bind must fault";
  }
  {
    emsmdb_client rude(tcp());
    ASSERT_TRUE(rude.bind());
    byte_buffer out;
    dcerpc::encode(out, dcerpc::response_pdu{7, 0, 0, {}});
    rude.socket().send(out);
    EXPECT_TRUE(rude.socket().closed_by_peer()) << "a response PDU from a client closes its connection";
  }
  // Random datagrams (and a forged cookie) at the UDP port.
  udp_endpoint_socket noise;
  for (int i = 0; i < 200; ++i) noise.send_to(udp(), random_bytes(random.next() % 200));
  byte_buffer cookie;
  encode_reachability_cookie(cookie, 0x12345678, as_bytes(context_text));
  noise.send_to(udp(), cookie);
  // Garbage and an over-long line at the control port.
  tcp_client ctl_noise(control());
  ctl_noise.send(random_bytes(3000));
  ctl_noise.send(std::string(20000, 'x') + "\n");

  // The registered session still gets its ping, and its details.
  tcp_client ctl(control());
  const auto event_id = inject(ctl, alice);
  ASSERT_TRUE(event_id);
  const auto ping = callback.receive();
  ASSERT_TRUE(ping) << "no ping after the garbage";
  EXPECT_EQ(*ping, byte_buffer(context_text.begin(), context_text.end()));
  const auto mails = client.fetch(cxh);
  ASSERT_TRUE(mails);
  ASSERT_EQ(mails->size(), 1u);
  EXPECT_EQ((*mails)[0].event.id, *event_id);

  // And the server still accepts and serves new sessions.
  emsmdb_client late(tcp());
  udp_endpoint_socket late_callback;
  emsmdb::context_handle late_cxh;
  log_on_and_register(late, "/o=nudge/cn=late", as_bytes("late"), late_callback.local(), late_cxh);
  if (HasFatalFailure()) return;
  ASSERT_TRUE(inject(ctl, "/o=nudge/cn=late"));
  const auto late_ping = late_callback.receive();
  ASSERT_TRUE(late_ping);
  EXPECT_EQ(*late_ping, byte_buffer({'l', 'a', 't', 'e'}));

  const auto stats = query_stats(ctl);
  ASSERT_TRUE(stats && stats->is_object());
  EXPECT_GE((*stats)["connections_dropped_malformed"].get<int>(), 1);
  EXPECT_GE((*stats)["datagrams_ignored"].get<int>(), 200);
  EXPECT_EQ((*stats)["cookies_accepted"], 0);
  EXPECT_GE((*stats)["driver"]["control_errors"].get<int>(), 1);
}

class notifier_socket_resend_test : public notifier_socket_test {
 protected:
  void configure(server_config& cfg) override { cfg.core.ping_resend = std::chrono::milliseconds(100); }
};

TEST_F(notifier_socket_resend_test, TheTimerResendsThePingUntilTheDetailsAreFetched) {
  emsmdb_client client(tcp());
  udp_endpoint_socket callback;
  emsmdb::context_handle cxh;
  log_on_and_register(client, alice, as_bytes(context_text), callback.local(), cxh);
  if (HasFatalFailure()) return;
  tcp_client ctl(control());
  ASSERT_TRUE(inject(ctl, alice));
  const byte_buffer expected(context_text.begin(), context_text.end());
  for (int i = 0; i < 3; ++i) {  // the first ping, then resends fired by the driver's timer
    const auto ping = callback.receive();
    ASSERT_TRUE(ping) << "ping " << i << " missing";
    EXPECT_EQ(*ping, expected);
  }
  const auto mails = client.fetch(cxh);
  ASSERT_TRUE(mails);
  EXPECT_EQ(mails->size(), 1u);
  const auto stats = query_stats(ctl);
  ASSERT_TRUE(stats && stats->is_object());
  EXPECT_GE((*stats)["datagrams_resent"].get<int>(), 2);
}

TEST(notifier_server_start, ReportsABusyPortAsAValue) {
  boost::asio::io_context io;
  server_config first_cfg;
  first_cfg.tcp_listen = loopback_any;
  first_cfg.udp_bind = loopback_any;
  notifier_server first(io, first_cfg, notifier::stderr_log(true));
  ASSERT_FALSE(first.start());

  server_config second_cfg;
  second_cfg.tcp_listen = loopback_any;
  second_cfg.udp_bind = first.udp_endpoint();  // taken
  notifier_server second(io, second_cfg, notifier::stderr_log(true));
  const auto error = second.start();
  ASSERT_TRUE(error);
  EXPECT_NE(error->find("cannot bind the UDP socket to " + first.udp_endpoint().to_string()), std::string::npos)
      << *error;
  first.stop();
  io.run();
}

TEST(notifier_server_start, RefusesNonLoopbackAddressesUnlessAllowed) {
  boost::asio::io_context io;
  server_config cfg;
  cfg.tcp_listen = ip_endpoint::v4(0, 0, 0, 0, 0);  // never bound: refused before any socket opens
  cfg.udp_bind = loopback_any;
  notifier_server server(io, cfg, notifier::stderr_log(true));
  const auto error = server.start();
  ASSERT_TRUE(error);
  EXPECT_EQ(*error, "refusing to bind the DCE/RPC socket to 0.0.0.0:0: not a loopback address");
}

TEST_F(notifier_socket_test, AFragmentedRequestIsAnsweredAndDisconnectEndsTheSession) {
  emsmdb_client client(tcp());
  ASSERT_TRUE(client.socket().connected());
  ASSERT_TRUE(client.bind());
  byte_buffer keeper;
  auto connected = client.connect(alice, keeper);
  ASSERT_TRUE(connected);
  const emsmdb::context_handle cxh = connected->cxh;
  tcp_client ctl(control());
  const auto event_id = inject(ctl, alice);
  ASSERT_TRUE(event_id);

  // EcDoRpcExt2 in three fragments, each in its own write.
  byte_buffer stub;
  {
    byte_writer w(stub);
    emsmdb::encode_empty_poll(w, cxh);
  }
  const std::uint32_t call_id = client.take_call_id();
  byte_buffer fragments;
  ASSERT_EQ(dcerpc::encode_request_fragments(fragments, call_id, 0, opnum::do_rpc_ext2, stub, 48), 3u);
  for (std::size_t used = 0; used < fragments.size();) {
    const auto h = dcerpc::decode_common_header(bytes_view(fragments).subspan(used));
    ASSERT_TRUE(h.complete());
    ASSERT_TRUE(client.socket().send(bytes_view(fragments).subspan(used, h.value.frag_length)));
    used += h.value.frag_length;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));  // separate segments, most likely
  }
  byte_buffer raw;
  auto answer = client.read_decoded(raw);
  ASSERT_TRUE(answer) << "no answer to the fragmented request";
  auto* rsp = std::get_if<dcerpc::response_pdu>(&*answer);
  ASSERT_NE(rsp, nullptr);
  EXPECT_EQ(rsp->call_id, call_id);
  auto fetched = emsmdb::decode_rpc_ext2_response(rsp->stub);
  ASSERT_TRUE(fetched.complete()) << fetched.reason;
  EXPECT_EQ(fetched.value.return_code, ec::success);
  struct count_mail : rop::rop_visitor {
    std::vector<std::uint64_t> ids;
    void on_new_mail(const rop::new_mail_notification& n) override { ids.push_back(n.event.id); }
    void on_pending(std::uint16_t) override {}
  } mails;
  ASSERT_TRUE(rop::decode_response(fetched.value.rgb_out, mails).complete());
  EXPECT_EQ(mails.ids, std::vector<std::uint64_t>{*event_id});

  // EcDoDisconnect: the handle comes back zeroed, and is dead afterwards.
  auto bye = client.call(opnum::do_disconnect, [&](byte_writer& w) { emsmdb::encode(w, emsmdb::disconnect_request{cxh}); });
  ASSERT_TRUE(bye) << "no EcDoDisconnect response";
  auto ended = emsmdb::decode_disconnect_response(*bye);
  ASSERT_TRUE(ended.complete());
  EXPECT_TRUE(ended.value.cxh.is_null());
  EXPECT_EQ(ended.value.return_code, ec::success);

  byte_buffer pdu;
  emsmdb::encode_empty_poll_request(pdu, client.take_call_id(), cxh);
  ASSERT_TRUE(client.socket().send(pdu));
  auto refused = client.read_decoded(raw);
  ASSERT_TRUE(refused);
  auto* fault = std::get_if<dcerpc::fault_pdu>(&*refused);
  ASSERT_NE(fault, nullptr) << "a disconnected handle must not be served";
  EXPECT_EQ(fault->status, fault_status::context_mismatch);

  auto stats = query_stats(ctl);
  ASSERT_TRUE(stats);
  EXPECT_EQ((*stats)["open_connections"], 1);  // the EMSMDB connection lives on
  EXPECT_EQ((*stats)["fragmented_requests"], 1);
  EXPECT_EQ((*stats)["sessions_disconnected"], 1);
}

}  // namespace
}  // namespace nudge::test
