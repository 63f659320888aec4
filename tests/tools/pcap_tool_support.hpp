#pragma once
// Test support for nudge-pcap: PDUs from nudge_protocol's encoders, frames
// from nudge_capture's synthesizer, and helpers that run the analyser over
// them or over a file.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <vector>

#include "nudge/capture/frame_sink.hpp"
#include "nudge/capture/frame_synthesizer.hpp"
#include "nudge/pcap/analyser.hpp"
#include "nudge/pcap/capture_reader.hpp"
#include "nudge/protocol/dcerpc.hpp"
#include "nudge/protocol/emsmdb.hpp"
#include "nudge/protocol/identifiers.hpp"
#include "nudge/protocol/rop.hpp"
#include "nudge/protocol/sockaddr.hpp"

namespace nudge::pcap_tool::test {

using protocol::byte_buffer;
using protocol::byte_writer;
namespace dcerpc = protocol::dcerpc;
namespace emsmdb = protocol::emsmdb;
namespace rop = protocol::rop;

inline ip_endpoint ep(std::uint8_t a, std::uint8_t b, std::uint8_t c, std::uint8_t d, std::uint16_t port) {
  return ip_endpoint::v4(a, b, c, d, port);
}

inline time_point at_ms(std::int64_t ms) { return time_point{std::chrono::milliseconds(ms)}; }

/// Whole PDUs as nudge's client and notifier encode them.
struct pdu_factory {
  emsmdb::context_handle cxh{0, protocol::guid::parse("11111111-2222-3333-4444-555555555555")};
  emsmdb::context_handle acxh{0, protocol::guid::parse("66666666-7777-8888-9999-aaaaaaaaaaaa")};

  static byte_buffer bind(std::uint32_t call, bool async) {
    dcerpc::bind_pdu b;
    b.call_id = call;
    dcerpc::presentation_context ctx;
    ctx.abstract_syntax = async ? protocol::async_emsmdb_syntax() : protocol::emsmdb_syntax();
    ctx.transfer_syntaxes.push_back(protocol::ndr_syntax());
    b.contexts.push_back(ctx);
    byte_buffer out;
    dcerpc::encode(out, b);
    return out;
  }
  static byte_buffer bind_ack(std::uint32_t call) {
    dcerpc::bind_ack_pdu a;
    a.call_id = call;
    a.secondary_address = "7777";
    dcerpc::bind_result r;
    r.transfer_syntax = protocol::ndr_syntax();
    a.results.push_back(r);
    byte_buffer out;
    dcerpc::encode(out, a);
    return out;
  }
  static byte_buffer fault(std::uint32_t call) {
    dcerpc::fault_pdu f;
    f.call_id = call;
    f.status = protocol::fault_status::op_rng_error;
    byte_buffer out;
    dcerpc::encode(out, f);
    return out;
  }
  byte_buffer connect_req(std::uint32_t call) const {
    emsmdb::connect_ex_request req;
    req.user_dn = "/o=nudge/ou=test/cn=Recipients/cn=alice";
    byte_buffer out;
    dcerpc::encode_request(out, call, 0, protocol::opnum::do_connect_ex, [&](byte_writer& w) { emsmdb::encode(w, req); });
    return out;
  }
  byte_buffer connect_rsp(std::uint32_t call, std::uint16_t session_index, std::uint32_t polls_max_ms = 60000) const {
    emsmdb::connect_ex_response rsp;
    rsp.cxh = cxh;
    rsp.session_index = session_index;
    rsp.polls_max_ms = polls_max_ms;
    rsp.dn_prefix = "/o=nudge";
    rsp.display_name = "alice";
    byte_buffer out;
    dcerpc::encode_response(out, call, 0, [&](byte_writer& w) { emsmdb::encode(w, rsp); });
    return out;
  }
  byte_buffer register_req(std::uint32_t call, protocol::bytes_view context, const ip_endpoint& callback) const {
    const byte_buffer sa = protocol::windows_sockaddr(callback);
    emsmdb::register_push_request req;
    req.cxh = cxh;
    req.context = context;
    req.callback_address = sa;
    byte_buffer out;
    dcerpc::encode_request(out, call, 0, protocol::opnum::register_push_notification,
                           [&](byte_writer& w) { emsmdb::encode(w, req); });
    return out;
  }
  byte_buffer register_rsp(std::uint32_t call) const {
    emsmdb::register_push_response rsp;
    rsp.cxh = cxh;
    rsp.notification_handle = 7;
    byte_buffer out;
    dcerpc::encode_response(out, call, 0, [&](byte_writer& w) { emsmdb::encode(w, rsp); });
    return out;
  }
  byte_buffer ext2_req(std::uint32_t call) const {
    byte_buffer out;
    emsmdb::encode_empty_poll_request(out, call, cxh);
    return out;
  }
  byte_buffer ext2_rsp(std::uint32_t call, const std::vector<rop::event_stamp>& events = {},
                       std::optional<std::uint16_t> pending = std::nullopt) const {
    byte_buffer rgb_out;
    rop::response_builder b(rgb_out);
    for (const auto& e : events) {
      rop::new_mail_notification n;
      n.notification_handle = 7;
      n.folder_id = 1;
      n.event = e;
      b.add(n);
    }
    if (pending) b.add_pending(*pending);
    b.finish();
    emsmdb::rpc_ext2_response rsp;
    rsp.cxh = cxh;
    rsp.rgb_out = rgb_out;
    byte_buffer out;
    dcerpc::encode_response(out, call, 0, [&](byte_writer& w) { emsmdb::encode(w, rsp); });
    return out;
  }
  byte_buffer async_connect_req(std::uint32_t call) const {
    byte_buffer out;
    dcerpc::encode_request(out, call, 0, protocol::opnum::do_async_connect_ex,
                           [&](byte_writer& w) { emsmdb::encode(w, emsmdb::async_connect_request{cxh}); });
    return out;
  }
  byte_buffer async_connect_rsp(std::uint32_t call) const {
    byte_buffer out;
    dcerpc::encode_response(out, call, 0,
                            [&](byte_writer& w) { emsmdb::encode(w, emsmdb::async_connect_response{acxh, 0}); });
    return out;
  }
  byte_buffer wait_req(std::uint32_t call) const {
    byte_buffer out;
    dcerpc::encode_request(out, call, 0, protocol::opnum::do_async_wait_ex,
                           [&](byte_writer& w) { emsmdb::encode(w, emsmdb::async_wait_request{acxh, 0}); });
    return out;
  }
  static byte_buffer wait_rsp(std::uint32_t call, std::uint32_t flags_out) {
    byte_buffer out;
    dcerpc::encode_response(out, call, 0,
                            [&](byte_writer& w) { emsmdb::encode(w, emsmdb::async_wait_response{flags_out, 0}); });
    return out;
  }
  static byte_buffer dummy_req(std::uint32_t call) {
    byte_buffer out;
    dcerpc::encode_request(out, call, 0, protocol::opnum::dummy_rpc, [](byte_writer&) {});
    return out;
  }
  static byte_buffer dummy_rsp(std::uint32_t call) {
    byte_buffer out;
    dcerpc::encode_response(out, call, 0, [](byte_writer& w) { emsmdb::encode_dummy_response(w, 0); });
    return out;
  }
};

/// Runs the analyser over synthesized Ethernet frames.
inline analysis analyse_frames(const std::vector<capture::captured_frame>& frames, analyser_options o = {}) {
  analyser a(std::move(o));
  for (const auto& f : frames)
    a.on_frame(capture_reader::dlt_en10mb, f.time, f.bytes, static_cast<std::uint32_t>(f.bytes.size()));
  return a.finish();
}

/// The analysis of a capture file, or why it could not be read at all.
inline result<analysis> try_analyse_file(const std::filesystem::path& p, analyser_options o = {}) {
  analyser a(std::move(o));
  const auto st = read_capture(p, a);
  if (!st) return st.error();
  analysis r = a.finish();
  r.file = p.string();
  st->apply_to(r);
  return r;
}

/// The analysis of a capture file that must be readable (a test failure if not).
inline analysis analyse_file(const std::filesystem::path& p, analyser_options o = {}) {
  auto r = try_analyse_file(p, std::move(o));
  if (!r) {
    ADD_FAILURE() << r.error().message;
    return {};
  }
  return std::move(r).value();
}

/// A per-process scratch directory, removed at exit.
inline const std::filesystem::path& scratch_dir() {
  struct dir {
    std::filesystem::path path;
    dir() {
      path = std::filesystem::temp_directory_path() / ("nudge_pcap_tool_test_" + std::to_string(::getpid()));
      std::filesystem::create_directories(path);
    }
    ~dir() {
      std::error_code ec;
      if (!std::getenv("NUDGE_KEEP_PCAP")) std::filesystem::remove_all(path, ec);
    }
  };
  static const dir d;
  return d.path;
}

inline void write_bytes(const std::filesystem::path& p, const std::vector<std::uint8_t>& bytes) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
}

inline std::vector<std::uint8_t> read_bytes(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

inline const traffic_cell& cell(const kind_traffic& t, message_kind k, direction d) { return t.meter.cell(k, d); }

/// Every packet is in exactly one place: a kind of one flow, or a skip count.
inline void expect_every_packet_accounted(const analysis& a) {
  std::uint64_t in_flows = 0;
  for (const auto& c : a.clients) {
    std::uint64_t client_packets = 0;
    for (const auto& f : c.flows) {
      EXPECT_EQ(f.traffic.total().packets, f.packets) << f.client.to_string() << " - " << f.server.to_string();
      client_packets += f.packets;
    }
    EXPECT_EQ(c.traffic.total().packets, client_packets);
    in_flows += client_packets;
  }
  EXPECT_EQ(in_flows + a.skipped.total(), a.packets);
  EXPECT_EQ(a.total.traffic.total().packets, in_flows);
}

}  // namespace nudge::pcap_tool::test
