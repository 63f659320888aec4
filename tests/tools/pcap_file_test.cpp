// nudge-pcap and capture files: truncated, garbage, empty, missing and foreign
// captures give an error or skip counts, never a crash; every supported link
// type gives the same figures; pcapng; the shared reference capture, frame by
// frame; the command line.
#include <gtest/gtest.h>
#include <pcap/pcap.h>

#include <nlohmann/json.hpp>
#include <sstream>

#include "nudge/capture/pcap_file_writer.hpp"
#include "nudge/pcap/cli.hpp"
#include "pcap_tool_support.hpp"
#include "session_capture.hpp"
#include "support/require.hpp"

namespace nudge::pcap_tool::test {
namespace {

using capture::capture_error;
using capture::frame_synthesizer;
using capture::memory_sink;
using metrics::direction;
using protocol::emsmdb::message_kind;
using pcap_test::shared_capture;

constexpr direction up = direction::to_server;
constexpr direction down = direction::to_client;

std::filesystem::path scratch(const std::string& name) { return scratch_dir() / name; }

// Offsets of the records of a classic pcap file (24-byte header, 16-byte record headers).
std::vector<std::size_t> record_offsets(const std::vector<std::uint8_t>& f) {
  std::vector<std::size_t> out;
  std::size_t off = 24;
  while (off + 16 <= f.size()) {
    out.push_back(off);
    const std::uint32_t incl = f[off + 8] | (f[off + 9] << 8) | (f[off + 10] << 16) | (std::uint32_t{f[off + 11]} << 24);
    off += 16 + incl;
  }
  return out;
}

std::string open_error(const std::filesystem::path& p) {
  try {
    (void)analyse_file(p);
  } catch (const capture_open_error& e) {
    return e.what();
  }
  return "";
}

TEST(PcapFiles, TruncatedLastRecordKeepsWhatWasRead) {
  const auto& f = shared_capture();
  ASSERT_TRUE(f.info.error.empty()) << f.info.error;
  std::vector<std::uint8_t> bytes = read_bytes(f.path);
  const auto offs = record_offsets(bytes);
  ASSERT_EQ(offs.size(), f.info.frames);
  const std::size_t last = offs.back();
  const std::size_t last_len = bytes.size() - last - 16;

  // Cut the last record's data in half.
  {
    std::vector<std::uint8_t> cut(bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(last + 16 + last_len / 2));
    write_bytes(scratch("cut_data.pcap"), cut);
    const analysis a = analyse_file(scratch("cut_data.pcap"));
    EXPECT_EQ(a.packets, f.info.frames - 1);
    EXPECT_EQ(a.truncated_at, std::optional<std::uint64_t>(f.info.frames));
    EXPECT_NE(a.error.find("truncated"), std::string::npos) << a.error;
    EXPECT_EQ(a.clients.size(), 3u);
  }
  // Cut inside the last record's header.
  {
    std::vector<std::uint8_t> cut(bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(last + 7));
    write_bytes(scratch("cut_header.pcap"), cut);
    const analysis a = analyse_file(scratch("cut_header.pcap"));
    EXPECT_EQ(a.packets, f.info.frames - 1);
    EXPECT_EQ(a.truncated_at, std::optional<std::uint64_t>(f.info.frames));
  }
  // A record whose length is absurd: libpcap refuses it, what came before counts.
  {
    std::vector<std::uint8_t> bad = bytes;
    const std::size_t r = offs[10];
    for (int i = 8; i < 16; ++i) bad[r + static_cast<std::size_t>(i)] = 0xFF;
    write_bytes(scratch("bad_len.pcap"), bad);
    const analysis a = analyse_file(scratch("bad_len.pcap"));
    EXPECT_EQ(a.packets, 10u);
    EXPECT_EQ(a.truncated_at, std::optional<std::uint64_t>(11));
    EXPECT_FALSE(a.error.empty());
  }
}

TEST(PcapFiles, GarbageEmptyMissingAndHeaderOnly) {
  std::vector<std::uint8_t> garbage(4096);
  std::uint32_t x = 12345;
  for (auto& b : garbage) b = static_cast<std::uint8_t>((x = x * 1103515245u + 12345u) >> 24);
  write_bytes(scratch("garbage.pcap"), garbage);
  EXPECT_NE(open_error(scratch("garbage.pcap")).find("not a pcap"), std::string::npos) << open_error(scratch("garbage.pcap"));

  write_bytes(scratch("empty.pcap"), {});
  EXPECT_NE(open_error(scratch("empty.pcap")).find("empty file"), std::string::npos);

  EXPECT_NE(open_error(scratch("does-not-exist.pcap")).find("no such file"), std::string::npos);
  EXPECT_NE(open_error(scratch_dir()).find("directory"), std::string::npos);

  // A valid header and no records: nothing to report, no error.
  const std::vector<std::uint8_t> header_only = {0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0, 0, 0, 0, 0,
                                                 0,    0,    0,    0,    0xff, 0xff, 0, 0, 1, 0, 0, 0};
  write_bytes(scratch("header_only.pcap"), header_only);
  const analysis a = analyse_file(scratch("header_only.pcap"));
  EXPECT_EQ(a.packets, 0u);
  EXPECT_TRUE(a.error.empty());
  EXPECT_TRUE(a.clients.empty());
}

TEST(PcapFiles, UnsupportedLinkType) {
  pcap_t* dead = pcap_open_dead(DLT_IEEE802_11, 65535);
  ASSERT_NE(dead, nullptr);
  const auto p = scratch("wifi.pcap");
  pcap_dumper_t* d = pcap_dump_open(dead, p.c_str());
  ASSERT_NE(d, nullptr);
  pcap_dump_close(d);
  pcap_close(dead);
  EXPECT_NE(open_error(p).find("unsupported link type"), std::string::npos) << open_error(p);
}

// An IPv4 capture of UDP between unrelated hosts, ARP and ICMP: all skipped, counted.
TEST(PcapFiles, ForeignUdpOnlyCapture) {
  const auto p = scratch("foreign.pcap");
  capture::pcap_file_writer w;
  ASSERT_EQ(w.open(p), capture_error::none);
  frame_synthesizer syn(w);
  std::uint32_t x = 99;
  const int datagrams = 500;
  for (int i = 0; i < datagrams; ++i) {
    x = x * 1103515245u + 12345u;
    const auto a = static_cast<std::uint8_t>(1 + (x >> 24) % 50);
    const auto b = static_cast<std::uint8_t>(1 + (x >> 16) % 50);
    std::vector<std::uint8_t> payload((x >> 8) % 200, static_cast<std::uint8_t>(i));
    ASSERT_EQ(syn.udp(at_ms(i), ep(192, 168, 1, a, static_cast<std::uint16_t>(1000 + a)),
                      ep(192, 168, 2, b, static_cast<std::uint16_t>(2000 + b)), payload),
              capture_error::none);
  }
  // ARP request (ethertype 0x0806) and an ICMP echo (protocol 1).
  std::vector<std::uint8_t> arp(42, 0);
  arp[12] = 0x08;
  arp[13] = 0x06;
  w.frame(at_ms(600), arp);
  std::vector<std::uint8_t> icmp = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 0x08, 0x00,  // Ethernet
                                    0x45, 0, 0, 28, 0, 1, 0, 0, 64, 1, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,  // IPv4
                                    8, 0, 0, 0, 0, 1, 0, 1};  // ICMP echo
  w.frame(at_ms(601), icmp);
  std::vector<std::uint8_t> runt = {1, 2, 3};  // shorter than an Ethernet header
  w.frame(at_ms(602), runt);
  ASSERT_EQ(w.close(), capture_error::none);

  const analysis a = analyse_file(p);
  EXPECT_EQ(a.packets, static_cast<std::uint64_t>(datagrams) + 3);
  EXPECT_TRUE(a.clients.empty());
  EXPECT_EQ(a.skipped.unrelated_udp, static_cast<std::uint64_t>(datagrams));
  EXPECT_EQ(a.skipped.not_ip, 1u);
  EXPECT_EQ(a.skipped.other_protocol, 1u);
  EXPECT_EQ(a.skipped.short_link, 1u);
  EXPECT_EQ(a.skipped.total(), a.packets);
  EXPECT_TRUE(a.error.empty());
  expect_every_packet_accounted(a);
}

// ---- link types ------------------------------------------------------------------------

// Rewrites an Ethernet capture with another link-layer header.
std::filesystem::path relink(const std::filesystem::path& in, int dlt, const std::string& name) {
  char err[PCAP_ERRBUF_SIZE];
  pcap_t* src = pcap_open_offline(in.c_str(), err);
  EXPECT_NE(src, nullptr) << err;
  pcap_t* dead = pcap_open_dead(dlt, 65535);
  const auto out = scratch(name);
  pcap_dumper_t* d = pcap_dump_open(dead, out.c_str());
  pcap_pkthdr* h = nullptr;
  const u_char* data = nullptr;
  while (pcap_next_ex(src, &h, &data) == 1) {
    const std::uint16_t ethertype = static_cast<std::uint16_t>((data[12] << 8) | data[13]);
    std::vector<std::uint8_t> frame;
    switch (dlt) {
      case DLT_RAW: break;
      case DLT_NULL: frame = {2, 0, 0, 0}; break;
      case DLT_LOOP: frame = {0, 0, 0, 2}; break;
      case DLT_LINUX_SLL:
        frame = {0, 0, 0, 1, 0, 6, 2, 0, 0, 0, 0, 0, 0, 0, static_cast<std::uint8_t>(ethertype >> 8),
                 static_cast<std::uint8_t>(ethertype)};
        break;
      case DLT_LINUX_SLL2:
        frame = {static_cast<std::uint8_t>(ethertype >> 8), static_cast<std::uint8_t>(ethertype), 0, 0, 0, 0, 0, 1, 0, 1,
                 0, 6, 2, 0, 0, 0, 0, 0, 0, 0};
        break;
      default: ADD_FAILURE() << "unexpected dlt";
    }
    frame.insert(frame.end(), data + 14, data + h->caplen);
    pcap_pkthdr oh = *h;
    oh.caplen = static_cast<bpf_u_int32>(frame.size());
    oh.len = static_cast<bpf_u_int32>(h->len - 14 + (frame.size() - (h->caplen - 14)));
    pcap_dump(reinterpret_cast<u_char*>(d), &oh, frame.data());
  }
  pcap_dump_close(d);
  pcap_close(dead);
  pcap_close(src);
  return out;
}

TEST(PcapFiles, EveryLinkTypeGivesTheSameFigures) {
  const auto& f = shared_capture();
  ASSERT_TRUE(f.info.error.empty()) << f.info.error;
  const analysis ref = analyse_file(f.path);
  const struct {
    int dlt;
    const char* name;
  } types[] = {{DLT_RAW, "RAW"}, {DLT_NULL, "NULL"}, {DLT_LOOP, "LOOP"}, {DLT_LINUX_SLL, "LINUX_SLL"},
               {DLT_LINUX_SLL2, "LINUX_SLL2"}};
  for (const auto& t : types) {
    SCOPED_TRACE(t.name);
    const analysis a = analyse_file(relink(f.path, t.dlt, std::string("link_") + t.name + ".pcap"));
    EXPECT_EQ(a.link_type, t.name);
    EXPECT_EQ(a.packets, ref.packets);
    EXPECT_EQ(a.skipped.total(), 0u);
    EXPECT_TRUE(a.total.traffic.meter == ref.total.traffic.meter);
    EXPECT_EQ(a.total.events, ref.total.events);
    EXPECT_EQ(a.total.fetches, ref.total.fetches);
    EXPECT_EQ(a.pings.size(), ref.pings.size());
  }
}

TEST(PcapFiles, Pcapng) {
  const auto& f = shared_capture();
  ASSERT_TRUE(f.info.error.empty()) << f.info.error;
  const auto r = pcap_test::run_command("command -v editcap");
  NUDGE_REQUIRE(!r.out.empty(), "editcap (Debian: wireshark-common)");
  const auto out = scratch("session.pcapng");
  const auto conv = pcap_test::run_command("editcap -F pcapng '" + f.path.string() + "' '" + out.string() + "'");
  ASSERT_EQ(conv.status, 0) << conv.err;
  const analysis ref = analyse_file(f.path);
  const analysis a = analyse_file(out);
  EXPECT_EQ(a.format, "pcapng");
  EXPECT_EQ(a.packets, ref.packets);
  EXPECT_TRUE(a.total.traffic.meter == ref.total.traffic.meter);
  EXPECT_EQ(a.total.events, ref.total.events);
  EXPECT_DOUBLE_EQ(a.clock_offset_s, ref.clock_offset_s);
}

// ---- the shared reference capture ------------------------------------------------------------

std::filesystem::path reference_capture() {
  std::vector<std::filesystem::path> candidates;
  if (const char* dir = std::getenv("NUDGE_SHARED_DIR"); dir && *dir) {
    candidates.emplace_back(std::filesystem::path(dir) / "reference" / "emsmdb-reference.pcap");
    candidates.emplace_back(std::filesystem::path(dir) / "emsmdb-reference.pcap");
  }
  candidates.emplace_back(std::filesystem::path(NUDGE_SOURCE_DIR).parent_path() / "shared" / "reference" /
                          "emsmdb-reference.pcap");
  for (const auto& c : candidates)
    if (std::filesystem::exists(c)) return c;
  return {};
}

// Its 17 frames: bind/bind_ack, register, poll, a ping, the fetch it causes (its
// response carries RopPending), EcDummyRpc, the AsyncEMSMDB bind and a completed
// EcDoAsyncWaitEx on a second connection, EcDoAsyncConnectEx. No TCP handshake:
// the roles come from the PDUs.
TEST(PcapReference, SeventeenFramesClassified) {
  const auto ref = reference_capture();
  NUDGE_REQUIRE(!ref.empty(), "emsmdb-reference.pcap (NUDGE_SHARED_DIR or ../shared/reference)");
  const analysis a = analyse_file(ref);
  EXPECT_EQ(a.packets, 17u);
  EXPECT_EQ(a.skipped.total(), 0u);
  EXPECT_EQ(a.stream.pdus, 16u);
  EXPECT_EQ(a.stream.malformed_pdus + a.stream.gaps + a.stream.resyncs, 0u);
  ASSERT_EQ(a.clients.size(), 1u);
  const client_report& c = a.clients[0];
  EXPECT_EQ(c.address.address_string(), "10.0.0.2");
  EXPECT_EQ(c.mode, client_mode::async);  // it registered, and it async-connected: async wins
  ASSERT_EQ(c.flows.size(), 3u);
  EXPECT_EQ(c.flows[0].interface, "emsmdb");
  EXPECT_EQ(c.flows[1].interface, "udp");
  EXPECT_EQ(c.flows[2].interface, "async_emsmdb");
  const auto msgs = [&](message_kind k, direction d) { return cell(c.traffic, k, d).messages; };
  const auto bytes = [&](message_kind k, direction d) { return cell(c.traffic, k, d).payload_bytes; };
  EXPECT_EQ(msgs(message_kind::bind, up), 2u);
  EXPECT_EQ(msgs(message_kind::bind, down), 2u);
  EXPECT_EQ(bytes(message_kind::bind, up), 2u * 72u);
  EXPECT_EQ(msgs(message_kind::register_push, up), 1u);
  EXPECT_EQ(msgs(message_kind::register_push, down), 1u);
  EXPECT_EQ(bytes(message_kind::register_push, up), 90u);
  EXPECT_EQ(bytes(message_kind::register_push, down), 52u);
  EXPECT_EQ(msgs(message_kind::poll, up), 1u);
  EXPECT_EQ(bytes(message_kind::poll, up), 84u);
  EXPECT_EQ(bytes(message_kind::poll, down), 100u);
  EXPECT_EQ(msgs(message_kind::fetch, up), 1u);     // 1 s after the ping
  EXPECT_EQ(bytes(message_kind::fetch, down), 104u);  // with RopPending
  EXPECT_EQ(msgs(message_kind::dummy, up), 1u);
  EXPECT_EQ(msgs(message_kind::dummy, down), 1u);
  EXPECT_EQ(msgs(message_kind::async_wait, up), 1u);
  EXPECT_EQ(msgs(message_kind::async_wait, down), 1u);
  EXPECT_EQ(msgs(message_kind::async_connect, up), 1u);
  EXPECT_EQ(msgs(message_kind::async_connect, down), 1u);
  EXPECT_EQ(cell(c.traffic, message_kind::ping, down), (traffic_cell{1, 8, 36, 1}));
  EXPECT_EQ(c.traffic.other[0].packets + c.traffic.other[1].packets, 0u);
  EXPECT_EQ(c.traffic.total().packets, 17u);
  EXPECT_EQ(c.traffic.total().wire_bytes, a.ip_bytes);
  ASSERT_EQ(a.pings.size(), 1u);
  EXPECT_TRUE(a.pings[0].matched);
  EXPECT_EQ(a.pings[0].from.to_string(), "10.0.0.1:49517");
  ASSERT_TRUE(a.pings[0].fetch_at.has_value());
  EXPECT_EQ(*a.pings[0].fetch_at - a.pings[0].at, std::chrono::seconds(1));
  EXPECT_EQ(c.pending_seen, 1u);     // the fetch's response: RopPending, no fetch follows in the capture
  EXPECT_EQ(c.async_notified, 1u);   // the wait completed with NotificationPending
  EXPECT_EQ(a.notifier_tcp.size(), 1u);
  EXPECT_EQ(a.notifier_tcp[0].to_string(), "10.0.0.1:7777");
  expect_every_packet_accounted(a);
}

// ---- the command line -------------------------------------------------------------------------

int run_cli(std::vector<std::string> args, std::string& out, std::string& err) {
  std::vector<const char*> argv{"nudge-pcap"};
  for (const auto& a : args) argv.push_back(a.c_str());
  std::ostringstream o, e;
  const int rc = pcap_main(static_cast<int>(argv.size()), argv.data(), o, e);
  out = o.str();
  err = e.str();
  return rc;
}

TEST(PcapCli, AnalyseWritesTableAndJson) {
  const auto& f = shared_capture();
  ASSERT_TRUE(f.info.error.empty()) << f.info.error;
  std::string out, err;
  const auto json_path = scratch("session.json");
  ASSERT_EQ(run_cli({"analyse", f.path.string(), "--json", json_path.string(), "--events"}, out, err), exit_ok) << err;
  EXPECT_NE(out.find("Totals per mode"), std::string::npos);
  EXPECT_NE(out.find("Top 3 of 3 clients"), std::string::npos);
  EXPECT_NE(out.find("127.0.0.4"), std::string::npos);
  const auto j = nlohmann::json::parse(read_bytes(json_path));
  EXPECT_EQ(j["schema"], "nudge.pcap/1");
  EXPECT_EQ(j["capture"]["packets"], f.info.frames);
  EXPECT_EQ(j["clients"].size(), 3u);
  EXPECT_EQ(j["modes"].size(), 3u);
  EXPECT_EQ(j["total"]["events"], f.info.events_fetched);
  EXPECT_EQ(j["events"].size(), f.info.events_fetched);
  EXPECT_TRUE(j["total"]["traffic"]["by_kind"].contains("register"));
  EXPECT_EQ(j["total"]["traffic"]["total"]["packets"], f.info.frames);
  EXPECT_EQ(j["pings"][0]["matched"], true);

  // The American spelling, quiet.
  ASSERT_EQ(run_cli({"analyze", f.path.string(), "-q", "--server-port", "7777", "--udp-port", "7778"}, out, err), exit_ok)
      << err;
  EXPECT_TRUE(out.empty());
}

TEST(PcapCli, ErrorsAndExitStatuses) {
  std::string out, err;
  EXPECT_EQ(run_cli({"analyse"}, out, err), exit_usage);
  EXPECT_EQ(run_cli({"analyse", "x.pcap", "--server-port", "0"}, out, err), exit_usage);
  EXPECT_EQ(run_cli({"frobnicate"}, out, err), exit_usage);
  EXPECT_EQ(run_cli({"analyse", (scratch_dir() / "missing.pcap").string()}, out, err), exit_unreadable);
  EXPECT_NE(err.find("no such file"), std::string::npos);
  EXPECT_EQ(run_cli({"--help"}, out, err), exit_ok);
  EXPECT_NE(out.find("analyse"), std::string::npos);
  EXPECT_EQ(run_cli({}, out, err), exit_ok);  // no subcommand: the help

  // A truncated capture: the analysis is printed, the status says it is partial.
  const auto& f = shared_capture();
  std::vector<std::uint8_t> bytes = read_bytes(f.path);
  bytes.resize(bytes.size() - 10);
  write_bytes(scratch("cli_cut.pcap"), bytes);
  EXPECT_EQ(run_cli({"analyse", scratch("cli_cut.pcap").string()}, out, err), exit_truncated);
  EXPECT_NE(err.find("truncated at packet " + std::to_string(f.info.frames)), std::string::npos) << err;
  EXPECT_NE(out.find("Totals per mode"), std::string::npos);
}

}  // namespace
}  // namespace nudge::pcap_tool::test
