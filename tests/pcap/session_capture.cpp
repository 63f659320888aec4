#include "session_capture.hpp"

#include <unistd.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <variant>

#include "nudge/capture/frame_synthesizer.hpp"
#include "nudge/capture/pcap_file_writer.hpp"
#include "nudge/client/client_session.hpp"
#include "nudge/notifier/notifier_core.hpp"
#include "nudge/protocol/dcerpc.hpp"
#include "nudge/protocol/identifiers.hpp"

namespace nudge::pcap_test {

using namespace std::chrono_literals;
using client::channel;
using client::client_config;
using client::client_metrics;
using client::client_mode;
using client::client_session;
using protocol::byte_buffer;
using protocol::bytes_view;
using protocol::ip_endpoint;

namespace {

time_point at(duration d) { return time_point{} + d; }

struct sim_client {
  client_metrics metrics;
  std::unique_ptr<client_session> session;
  std::array<ip_endpoint, 2> tcp{};  // per channel
  std::array<notifier::connection_id, 2> conn{};
  std::array<std::size_t, 2> stream{};
};

// The bench: like tests/sim's bench_pair, for several clients, with every
// transmission also handed to the frame synthesizer.
class recorded_bench {
 public:
  recorded_bench(notifier::notifier_config cfg, capture::frame_synthesizer& syn, session_capture& out)
      : core_(std::move(cfg)), syn_(syn), out_(out) {}

  notifier::notifier_core& core() { return core_; }

  sim_client& add(client_config cfg, const ip_endpoint& main_ep, const ip_endpoint& async_ep) {
    auto c = std::make_unique<sim_client>();
    c->session = std::make_unique<client_session>(std::move(cfg), c->metrics);
    c->tcp = {main_ep, async_ep};
    clients_.push_back(std::move(c));
    return *clients_.back();
  }

  void start(time_point now, sim_client& c) {
    for (channel ch : {channel::main, channel::async}) {
      if (ch == channel::async && !c.session->needs_async_channel()) continue;
      const auto i = static_cast<std::size_t>(ch);
      check(syn_.tcp_open(stamp(now), c.tcp[i], out_.server), "tcp_open");
      c.conn[i] = core_.open_connection(now, c.tcp[i]);
      c.stream[i] = next_stream_++;
      owners_[c.conn[i]] = {&c, ch};
    }
    c.session->start(now);
    pump(now);
  }

  /// A request the test encodes itself, on a client's main connection; its
  /// response is recorded but not handed to the client (it has no such call).
  void private_call(time_point now, sim_client& c, byte_buffer pdu) {
    const auto h = protocol::dcerpc::decode_common_header(pdu);
    private_calls_.insert({c.conn[0], h.value.call_id});
    transmit_to_server(now, c, channel::main, pdu);
    pump(now);
  }

  void pump(time_point now) {
    for (int round = 0; round < 1000; ++round) {
      bool moved = false;
      for (auto& c : clients_) {
        auto outs = std::move(c->session->outputs());
        c->session->outputs().clear();
        for (auto& o : outs) {
          moved = true;
          if (auto* t = std::get_if<client::tcp_send>(&o)) {
            transmit_to_server(now, *c, t->ch, t->bytes);
          } else if (auto* u = std::get_if<client::udp_send>(&o)) {
            check(syn_.udp(stamp(now), c->session->config().callback_address, u->to, u->bytes), "udp");
            core_.receive_datagram(now, c->session->config().callback_address, u->bytes);
          }
        }
      }
      auto souts = std::move(core_.outputs());
      core_.outputs().clear();
      for (auto& o : souts) {
        moved = true;
        if (auto* t = std::get_if<notifier::tcp_send>(&o)) {
          auto [owner, ch] = owners_.at(t->conn);
          const auto i = static_cast<std::size_t>(ch);
          check(syn_.tcp_data(stamp(now), out_.server, owner->tcp[i], t->bytes), "tcp_data to client");
          bool deliver = true;
          record(false, *owner, ch, t->bytes, &deliver);
          if (deliver) owner->session->receive(now, ch, t->bytes);
        } else if (auto* u = std::get_if<notifier::udp_send>(&o)) {
          check(syn_.udp(stamp(now), out_.server_udp, u->to, u->bytes), "udp ping");
          out_.datagrams.push_back({out_.server_udp, u->to, u->bytes});
          for (auto& c : clients_)
            if (c->session->needs_udp() && c->session->config().callback_address == u->to)
              c->session->receive_datagram(now, out_.server_udp, u->bytes);
        } else if (auto* cl = std::get_if<notifier::close_connection>(&o)) {
          fail("the notifier closed a connection: " + cl->reason);
        }
      }
      if (!moved) return;
    }
    fail("pump did not settle");
  }

  void run_until(time_point end) {
    for (;;) {
      time_point t = core_.next_deadline();
      for (auto& c : clients_) t = std::min(t, c->session->next_deadline());
      if (t > end) return;
      for (auto& c : clients_) c->session->on_timer(t);
      core_.on_timer(t);
      pump(t);
    }
  }

  void close_all(time_point now) {
    for (auto& c : clients_)
      for (channel ch : {channel::main, channel::async}) {
        const auto i = static_cast<std::size_t>(ch);
        if (c->conn[i] == 0) continue;
        check(syn_.tcp_close(stamp(now), c->tcp[i], out_.server), "tcp_close");
        core_.connection_closed(now, c->conn[i]);
      }
    core_.outputs().clear();
  }

 private:
  // Frames of one instant get distinct, increasing timestamps (100 µs apart).
  time_point stamp(time_point now) {
    last_ = std::max(now, last_ + 100us);
    return last_;
  }
  void check(capture::capture_error e, const char* what) {
    if (e != capture::capture_error::none) fail(std::string(what) + ": " + std::string(capture::to_string(e)));
  }
  void fail(std::string why) {
    if (out_.error.empty()) out_.error = std::move(why);
  }

  void transmit_to_server(time_point now, sim_client& c, channel ch, const byte_buffer& bytes) {
    const auto i = static_cast<std::size_t>(ch);
    check(syn_.tcp_data(stamp(now), c.tcp[i], out_.server, bytes), "tcp_data to server");
    record(true, c, ch, bytes, nullptr);
    core_.receive(now, c.conn[i], bytes);
  }

  // Splits one send into PDUs and appends them to the expected list.
  void record(bool from_client, sim_client& c, channel ch, bytes_view bytes, bool* deliver) {
    const auto i = static_cast<std::size_t>(ch);
    while (!bytes.empty()) {
      auto h = protocol::dcerpc::decode_common_header(bytes);
      if (!h.complete() || h.value.frag_length > bytes.size() || h.value.frag_length < 16)
        return fail("a send that is not whole DCE/RPC PDUs");
      pdu_record r;
      r.from_client = from_client;
      r.ptype = h.value.ptype;
      r.frag_length = h.value.frag_length;
      r.call_id = h.value.call_id;
      r.stream = c.stream[i];
      r.bound = ch == channel::main ? iface::emsmdb : iface::async_emsmdb;
      const auto key = std::make_tuple(c.conn[i], r.call_id);
      if (r.ptype == 0 && bytes.size() >= 24) {
        r.opnum = static_cast<std::uint16_t>(bytes[22] | (bytes[23] << 8));
        opnums_[key] = *r.opnum;
      } else if (r.ptype == 2 || r.ptype == 3) {
        if (auto it = opnums_.find(key); it != opnums_.end()) r.opnum = it->second;
      }
      if (deliver && private_calls_.count({c.conn[i], r.call_id})) *deliver = false;
      out_.pdus.push_back(r);
      bytes = bytes.subspan(h.value.frag_length);
    }
  }

  notifier::notifier_core core_;
  capture::frame_synthesizer& syn_;
  session_capture& out_;
  std::vector<std::unique_ptr<sim_client>> clients_;
  std::map<notifier::connection_id, std::pair<sim_client*, channel>> owners_;
  std::map<std::tuple<notifier::connection_id, std::uint32_t>, std::uint16_t> opnums_;
  std::set<std::pair<notifier::connection_id, std::uint32_t>> private_calls_;
  std::size_t next_stream_ = 0;
  time_point last_{};
};

client_config make_config(client_mode mode, std::string dn) {
  client_config c;
  c.mode = mode;
  c.user_dn = std::move(dn);
  c.poll_interval = 5s;
  return c;
}

}  // namespace

session_capture write_session_capture(const std::filesystem::path& path) {
  session_capture out;
  out.server = ip_endpoint::v4(127, 0, 0, 1, 7777);
  out.server_udp = ip_endpoint::v4(127, 0, 0, 1, 7778);
  out.callback = ip_endpoint::v4(127, 0, 0, 2, 2500);
  out.context = {'n', 'u', 'd', 'g', 'e', 0x00, 0x5A, 0xA5};
  out.user_dns = {"/o=nudge/ou=First Administrative Group/cn=Recipients/cn=bob",
                  "/o=nudge/ou=First Administrative Group/cn=Recipients/cn=carol",
                  "/o=nudge/ou=First Administrative Group/cn=Recipients/cn=dave"};

  capture::pcap_file_writer writer;
  if (writer.open(path, std::chrono::seconds(1700000000)) != capture::capture_error::none) {
    out.error = "cannot create " + path.string() + ": " + writer.error_text();
    return out;
  }
  capture::frame_synthesizer syn(writer);

  notifier::notifier_config ncfg;
  ncfg.polls_max_ms = 15000;
  ncfg.tcp_port = out.server.port;
  recorded_bench bench(ncfg, syn, out);

  auto push_cfg = make_config(client_mode::push, out.user_dns[0]);
  push_cfg.context.assign(out.context);
  push_cfg.callback_address = out.callback;
  auto& push = bench.add(push_cfg, ip_endpoint::v4(127, 0, 0, 2, 50000), {});
  auto& async = bench.add(make_config(client_mode::async, out.user_dns[1]), ip_endpoint::v4(127, 0, 0, 3, 50010),
                          ip_endpoint::v4(127, 0, 0, 3, 50011));
  auto& poll = bench.add(make_config(client_mode::poll, out.user_dns[2]), ip_endpoint::v4(127, 0, 0, 4, 50020), {});

  // bind, EcDoConnectEx, then EcRRegisterPushNotification / EcDoAsyncConnectEx +
  // EcDoAsyncWaitEx; the push and poll clients poll at 5 s.
  bench.start(at(0s), push);
  bench.start(at(100ms), async);
  bench.start(at(200ms), poll);
  bench.run_until(at(5500ms));

  auto& core = bench.core();
  // An event for the push client: ping -> EcDoRpcExt2 fetch (push confirmed).
  core.inject_event(at(6s), core.mailbox(out.user_dns[0]));
  bench.pump(at(6s));
  // An event for the async client: the held EcDoAsyncWaitEx completes -> fetch -> wait again.
  core.inject_event(at(7s), core.mailbox(out.user_dns[1]));
  bench.pump(at(7s));
  // More events than one response PDU (5840 bytes) holds: the poll at ~10 s gets
  // RopNotify x N + RopPending, and the client fetches the rest at once.
  for (int i = 0; i < 700; ++i) core.inject_event(at(8s), core.mailbox(out.user_dns[2]));
  bench.run_until(at(10500ms));

  // EcDummyRpc, hand-encoded (client_session never sends it).
  out.dummy_call_id = 100;
  byte_buffer dummy;
  protocol::dcerpc::encode_request(dummy, out.dummy_call_id, 0, protocol::opnum::dummy_rpc,
                                   [](protocol::byte_writer&) {});
  bench.private_call(at(11s), poll, std::move(dummy));
  bench.close_all(at(12s));

  out.polls_max_ms = ncfg.polls_max_ms;
  out.poll_session_index = poll.session->session_index();
  out.events_injected = core.stats().events_generated;
  out.events_fetched = core.stats().events_fetched;
  out.pending_sent = core.stats().pending_sent;
  out.async_completed = core.stats().async_completed;
  out.frames = syn.totals().frames;
  for (auto* c : {&push, &async, &poll})
    if (!c->session->ready() && out.error.empty()) out.error = "a client did not become ready: " + c->session->failure();
  if (out.error.empty() && !push.session->push_confirmed()) out.error = "the push client saw no ping";
  if (writer.close() != capture::capture_error::none && out.error.empty()) out.error = "pcap close: " + writer.error_text();
  return out;
}

capture_file::capture_file() : path(temp_pcap("nudge_session")), info(write_session_capture(path)) {}

capture_file::~capture_file() {
  if (!std::getenv("NUDGE_KEEP_PCAP")) {
    std::error_code ec;
    std::filesystem::remove(path, ec);
  }
}

const capture_file& shared_capture() {
  static const capture_file file;
  return file;
}

std::string hex(bytes_view b) {
  static constexpr char digits[] = "0123456789abcdef";
  std::string s;
  for (auto v : b) {
    s += digits[v >> 4];
    s += digits[v & 0xF];
  }
  return s;
}

command_result run_command(const std::string& command) {
  command_result r;
  char err_name[] = "/tmp/nudge_pcap_stderr_XXXXXX";
  const int fd = ::mkstemp(err_name);
  if (fd < 0) return r;
  ::close(fd);
  FILE* p = ::popen((command + " 2>'" + err_name + "'").c_str(), "r");
  if (p) {
    char buf[8192];
    std::size_t n = 0;
    while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) r.out.append(buf, n);
    const int rc = ::pclose(p);
    r.status = WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
  }
  std::ifstream in(err_name);
  std::ostringstream ss;
  ss << in.rdbuf();
  r.err = ss.str();
  std::remove(err_name);
  return r;
}

std::string find_tshark() {
  std::string path = run_command("command -v tshark").out;
  while (!path.empty() && (path.back() == '\n' || path.back() == '\r')) path.pop_back();
  return path;
}

std::vector<std::string> split(const std::string& text, char separator) {
  std::vector<std::string> cols;
  std::size_t start = 0;
  for (;;) {
    const std::size_t at_sep = text.find(separator, start);
    cols.push_back(text.substr(start, at_sep - start));
    if (at_sep == std::string::npos) break;
    start = at_sep + 1;
  }
  return cols;
}

std::vector<std::vector<std::string>> split_rows(const std::string& text, char separator) {
  std::vector<std::vector<std::string>> out;
  std::istringstream lines(text);
  std::string line;
  while (std::getline(lines, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    out.push_back(split(line, separator));
  }
  return out;
}

std::filesystem::path temp_pcap(const std::string& stem) {
  return std::filesystem::temp_directory_path() / (stem + "_" + std::to_string(::getpid()) + ".pcap");
}

}  // namespace nudge::pcap_test
