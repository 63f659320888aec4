#pragma once
// Stream readers for HTTP/1.1 requests (a server's side) and responses (a
// client's side), fed from byte buffers as they arrive. Built on Boost.Beast's
// parsers (eager: the body is parsed as soon as it is there); sans-IO: no
// sockets, no clocks. Every refusal is a value: the decoded<> is malformed
// with a static reason, and `refusal_status()` says what to answer
// (400, 413, 417, 431, 505). After a refusal the reader stays refused: the
// connection should be answered and closed.
//
//   request_reader r;
//   r.feed(bytes);
//   if (r.take_continue()) send("HTTP/1.1 100 Continue\r\n\r\n");
//   for (auto d = r.next(); d.complete(); d = r.next()) handle(d.value);
//   // d.need_more(): wait for bytes; d.malformed(): answer r.refusal_status(), close.
#include <cstddef>
#include <memory>
#include <string>

#include "nudge/http/message.hpp"
#include "nudge/protocol/byte_io.hpp"
#include "nudge/protocol/decode.hpp"

namespace nudge::http {

using protocol::bytes_view;
using protocol::decoded;

struct limits {
  /// Request or status line plus header fields, up to and including the blank line.
  std::size_t max_header_bytes = 8 * 1024;
  /// The body (after chunked decoding).
  std::size_t max_body_bytes = 1024 * 1024;
};

class request_reader {
 public:
  explicit request_reader(limits l = {});
  ~request_reader();
  request_reader(request_reader&&) noexcept;
  request_reader& operator=(request_reader&&) noexcept;

  /// Appends bytes received from the peer.
  void feed(bytes_view bytes);
  /// The next whole request: complete (consumed = its size on the wire),
  /// need_more, or malformed (see refusal_status()). Pipelined requests in
  /// the fed bytes come out one per call, in order.
  decoded<request> next();
  /// True once per request whose header asked `Expect: 100-continue` and whose
  /// body has not fully arrived yet: the moment a server sends
  /// `HTTP/1.1 100 Continue`. Call after feed() (or next()).
  bool take_continue();
  /// The status to answer a malformed request with (0 when not refused).
  int refusal_status() const;
  /// Bytes fed and not yet returned as a request.
  std::size_t buffered() const;

 private:
  struct state;
  std::unique_ptr<state> s_;
};

class response_reader {
 public:
  explicit response_reader(limits l = {});
  ~response_reader();
  response_reader(response_reader&&) noexcept;
  response_reader& operator=(response_reader&&) noexcept;

  void feed(bytes_view bytes);
  /// The peer closed its side: a response delimited by the connection's end
  /// (no Content-Length, not chunked) is then complete.
  void feed_eof();
  /// The answer to the next request will be to a HEAD (no body follows).
  void expect_head_response();
  /// The next whole response, interim ones (100 Continue) included: a client
  /// that sent `Expect: 100-continue` sends its body on seeing status 100.
  decoded<response> next();
  /// 0 when not refused; otherwise the HTTP status that describes the fault
  /// (502 for a peer that broke the protocol, as a proxy would say).
  int refusal_status() const;
  std::size_t buffered() const;

 private:
  struct state;
  std::unique_ptr<state> s_;
};

}  // namespace nudge::http
