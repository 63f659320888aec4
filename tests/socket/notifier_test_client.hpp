#pragma once
// Raw loopback sockets for the notifier's socket tests: blocking POSIX calls
// bounded by poll() timeouts, so a broken server fails a test instead of
// hanging it. Every address here is loopback.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

#include "nudge/protocol/byte_io.hpp"
#include "nudge/protocol/dcerpc.hpp"
#include "nudge/protocol/emsmdb.hpp"
#include "nudge/protocol/endpoint.hpp"
#include "nudge/protocol/rop.hpp"
#include "nudge/protocol/sockaddr.hpp"

namespace nudge::test {

using namespace std::chrono_literals;
using protocol::byte_buffer;
using protocol::bytes_view;
using protocol::ip_endpoint;

inline constexpr auto generous = 10s;  // waiting for something that should happen at once

inline sockaddr_in loopback_sockaddr(const ip_endpoint& e) {
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(e.port);
  sa.sin_addr.s_addr = htonl(e.v4_host_order());
  return sa;
}

class fd_holder {
 public:
  fd_holder() = default;
  explicit fd_holder(int fd) : fd_(fd) {}
  fd_holder(fd_holder&& o) noexcept : fd_(o.fd_) { o.fd_ = -1; }
  fd_holder& operator=(fd_holder&& o) noexcept {
    reset();
    fd_ = o.fd_;
    o.fd_ = -1;
    return *this;
  }
  ~fd_holder() { reset(); }
  void reset() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }
  int get() const { return fd_; }

 private:
  int fd_ = -1;
};

inline bool wait_readable(int fd, std::chrono::milliseconds timeout) {
  pollfd p{fd, POLLIN, 0};
  return ::poll(&p, 1, static_cast<int>(timeout.count())) == 1;
}

class tcp_client {
 public:
  explicit tcp_client(const ip_endpoint& to) : fd_(::socket(AF_INET, SOCK_STREAM, 0)) {
    if (!to.is_loopback()) return;  // never leaves the machine
    const sockaddr_in sa = loopback_sockaddr(to);
    connected_ = ::connect(fd_.get(), reinterpret_cast<const sockaddr*>(&sa), sizeof sa) == 0;
    const int one = 1;
    ::setsockopt(fd_.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  }
  bool connected() const { return connected_; }

  bool send(bytes_view b) {
    std::size_t done = 0;
    while (done < b.size()) {
      const ssize_t n = ::send(fd_.get(), b.data() + done, b.size() - done, MSG_NOSIGNAL);
      if (n <= 0) return false;
      done += static_cast<std::size_t>(n);
    }
    return true;
  }
  bool send(std::string_view s) { return send(protocol::as_bytes(s)); }

  /// Exactly n more bytes into `out`; false on timeout, EOF or error.
  bool read_exact(std::size_t n, byte_buffer& out, std::chrono::milliseconds timeout = generous) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (n > 0) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0 || !wait_readable(fd_.get(), left)) return false;
      std::uint8_t buf[4096];
      const ssize_t got = ::recv(fd_.get(), buf, std::min(n, sizeof buf), 0);
      if (got <= 0) return false;
      out.insert(out.end(), buf, buf + got);
      n -= static_cast<std::size_t>(got);
    }
    return true;
  }

  /// One whole DCE/RPC PDU (common header, then frag_length).
  std::optional<byte_buffer> read_pdu(std::chrono::milliseconds timeout = generous) {
    byte_buffer pdu;
    if (!read_exact(protocol::dcerpc::common_header_size, pdu, timeout)) return std::nullopt;
    const auto frag = static_cast<std::size_t>(pdu[8] | (pdu[9] << 8));
    if (frag < pdu.size() || !read_exact(frag - pdu.size(), pdu, timeout)) return std::nullopt;
    return pdu;
  }

  /// One line without its '\n'.
  std::optional<std::string> read_line(std::chrono::milliseconds timeout = generous) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (true) {
      if (auto nl = pending_.find('\n'); nl != std::string::npos) {
        std::string line = pending_.substr(0, nl);
        pending_.erase(0, nl + 1);
        return line;
      }
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0 || !wait_readable(fd_.get(), left)) return std::nullopt;
      char buf[65536];
      const ssize_t got = ::recv(fd_.get(), buf, sizeof buf, 0);
      if (got <= 0) return std::nullopt;
      pending_.append(buf, static_cast<std::size_t>(got));
    }
  }

  /// True when the peer closes (EOF or reset) within the timeout; data before it is discarded.
  bool closed_by_peer(std::chrono::milliseconds timeout = generous) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (true) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0 || !wait_readable(fd_.get(), left)) return false;
      char buf[4096];
      if (::recv(fd_.get(), buf, sizeof buf, 0) <= 0) return true;
    }
  }

 private:
  fd_holder fd_;
  bool connected_ = false;
  std::string pending_;
};

class udp_endpoint_socket {
 public:
  udp_endpoint_socket() : fd_(::socket(AF_INET, SOCK_DGRAM, 0)) {
    const sockaddr_in sa = loopback_sockaddr(ip_endpoint::v4(127, 0, 0, 1, 0));
    ::bind(fd_.get(), reinterpret_cast<const sockaddr*>(&sa), sizeof sa);
    sockaddr_in bound{};
    socklen_t len = sizeof bound;
    ::getsockname(fd_.get(), reinterpret_cast<sockaddr*>(&bound), &len);
    local_ = ip_endpoint::v4(ntohl(bound.sin_addr.s_addr), ntohs(bound.sin_port));
  }
  const ip_endpoint& local() const { return local_; }

  bool send_to(const ip_endpoint& to, bytes_view b) {
    if (!to.is_loopback()) return false;  // never leaves the machine
    const sockaddr_in sa = loopback_sockaddr(to);
    return ::sendto(fd_.get(), b.data(), b.size(), 0, reinterpret_cast<const sockaddr*>(&sa), sizeof sa) ==
           static_cast<ssize_t>(b.size());
  }

  std::optional<byte_buffer> receive(std::chrono::milliseconds timeout = generous) {
    if (!wait_readable(fd_.get(), timeout)) return std::nullopt;
    std::uint8_t buf[65536];
    const ssize_t got = ::recv(fd_.get(), buf, sizeof buf, 0);
    if (got < 0) return std::nullopt;
    return byte_buffer(buf, buf + got);
  }

 private:
  fd_holder fd_;
  ip_endpoint local_;
};

using namespace nudge::protocol;  // test support: the protocol names, unqualified

/// A raw EMSMDB client: hand-encoded PDUs over a tcp_client.
class emsmdb_client {
 public:
  explicit emsmdb_client(const ip_endpoint& server) : sock_(server) {}
  tcp_client& socket() { return sock_; }

  std::optional<dcerpc::bind_ack_pdu> bind() {
    dcerpc::bind_pdu b;
    b.call_id = next_call_++;
    b.contexts.push_back({0, emsmdb_syntax(), {ndr_syntax()}});
    byte_buffer out;
    dcerpc::encode(out, b);
    if (!sock_.send(out)) return std::nullopt;
    auto raw = sock_.read_pdu();
    if (!raw) return std::nullopt;
    auto d = dcerpc::decode_pdu(*raw);
    if (!d.complete()) return std::nullopt;
    auto* ack = std::get_if<dcerpc::bind_ack_pdu>(&d.value);
    if (!ack) return std::nullopt;
    return *ack;
  }

  /// The call id the next request takes (and takes it).
  std::uint32_t take_call_id() { return next_call_++; }

  /// The next PDU the server sends, decoded from `keeper` (which it views).
  std::optional<dcerpc::pdu> read_decoded(byte_buffer& keeper) {
    auto raw = sock_.read_pdu();
    if (!raw) return std::nullopt;
    keeper = std::move(*raw);
    auto d = dcerpc::decode_pdu(keeper);
    if (!d.complete()) return std::nullopt;
    return d.value;
  }

  /// A request; the response stub, copied out of its PDU (empty on failure).
  template <class StubWriter>
  std::optional<byte_buffer> call(std::uint16_t op, StubWriter&& write_stub) {
    byte_buffer out;
    dcerpc::encode_request(out, next_call_++, 0, op, std::forward<StubWriter>(write_stub));
    if (!sock_.send(out)) return std::nullopt;
    auto raw = sock_.read_pdu();
    if (!raw) return std::nullopt;
    auto d = dcerpc::decode_pdu(*raw);
    if (!d.complete()) return std::nullopt;
    auto* rsp = std::get_if<dcerpc::response_pdu>(&d.value);
    if (!rsp) return std::nullopt;
    return byte_buffer(rsp->stub.begin(), rsp->stub.end());
  }

  std::optional<emsmdb::connect_ex_response> connect(std::string_view user_dn, byte_buffer& stub_keeper) {
    emsmdb::connect_ex_request req;
    req.user_dn = user_dn;
    auto stub = call(opnum::do_connect_ex, [&](byte_writer& w) { emsmdb::encode(w, req); });
    if (!stub) return std::nullopt;
    stub_keeper = std::move(*stub);
    auto d = emsmdb::decode_connect_ex_response(stub_keeper);
    if (!d.complete()) return std::nullopt;
    return d.value;
  }

  std::optional<emsmdb::register_push_response> register_push(const emsmdb::context_handle& cxh,
                                                               bytes_view context, const ip_endpoint& callback) {
    const byte_buffer sockaddr = windows_sockaddr(callback);
    emsmdb::register_push_request req;
    req.cxh = cxh;
    req.context = context;
    req.callback_address = sockaddr;
    auto stub = call(opnum::register_push_notification, [&](byte_writer& w) { emsmdb::encode(w, req); });
    if (!stub) return std::nullopt;
    auto d = emsmdb::decode_register_push_response(*stub);
    if (!d.complete()) return std::nullopt;
    return d.value;
  }

  /// EcDoRpcExt2 with an empty ROP list: the NewMail details pending for the mailbox.
  std::optional<std::vector<rop::new_mail_notification>> fetch(const emsmdb::context_handle& cxh) {
    byte_buffer rgb_in;
    rop::encode_empty_request(rgb_in);
    emsmdb::rpc_ext2_request req;
    req.cxh = cxh;
    req.rgb_in = rgb_in;
    auto stub = call(opnum::do_rpc_ext2, [&](byte_writer& w) { emsmdb::encode(w, req); });
    if (!stub) return std::nullopt;
    auto d = emsmdb::decode_rpc_ext2_response(*stub);
    if (!d.complete() || d.value.return_code != ec::success) return std::nullopt;
    struct collect : rop::rop_visitor {
      std::vector<rop::new_mail_notification> mails;
      void on_new_mail(const rop::new_mail_notification& n) override { mails.push_back(n); }
      void on_pending(std::uint16_t) override {}
    } visitor;
    if (!rop::decode_response(d.value.rgb_out, visitor).complete()) return std::nullopt;
    return visitor.mails;
  }

 private:
  tcp_client sock_;
  std::uint32_t next_call_ = 1;
};

}  // namespace nudge::test
