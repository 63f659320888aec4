#include "nudge/http/reader.hpp"

#include <boost/asio/buffer.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace nudge::http {

namespace bhttp = boost::beast::http;

namespace {

// Limits too large for Beast's 32-bit header limit are clamped, not wrapped.
std::uint32_t header_limit(const limits& l) {
  return static_cast<std::uint32_t>(std::min<std::size_t>(l.max_header_bytes, 0xffffffffu));
}

struct refusal {
  int status;
  std::string_view reason;
};

// Beast's parse errors as what a server answers.
refusal request_refusal(const boost::system::error_code& ec) {
  if (ec == bhttp::error::header_limit) return {431, "header fields exceed the limit"};
  if (ec == bhttp::error::body_limit) return {413, "body exceeds the limit"};
  if (ec == bhttp::error::bad_version) return {400, "bad HTTP version"};
  if (ec == bhttp::error::bad_method) return {400, "bad method"};
  if (ec == bhttp::error::bad_target) return {400, "bad request target"};
  if (ec == bhttp::error::bad_field) return {400, "bad header field name"};
  if (ec == bhttp::error::bad_value) return {400, "bad header field value"};
  if (ec == bhttp::error::bad_content_length) return {400, "bad Content-Length"};
  if (ec == bhttp::error::bad_transfer_encoding) return {400, "bad Transfer-Encoding"};
  if (ec == bhttp::error::bad_chunk || ec == bhttp::error::bad_chunk_extension) return {400, "bad chunk"};
  if (ec == bhttp::error::bad_line_ending) return {400, "bad line ending"};
  if (ec == bhttp::error::partial_message) return {400, "connection ended inside a message"};
  return {400, "malformed HTTP message"};
}

// Beast refuses versions other than 1.0 and 1.1 as it refuses garbage; a
// well-formed "HTTP/d.d" at the end of the request line deserves 505, not 400.
bool names_another_version(std::string_view wire) {
  const auto eol = wire.find("\r\n");
  if (eol == std::string_view::npos || eol < 8) return false;
  const std::string_view v = wire.substr(eol - 8, 8);
  return v.substr(0, 5) == "HTTP/" && v[5] >= '0' && v[5] <= '9' && v[6] == '.' && v[7] >= '0' && v[7] <= '9';
}

std::string to_string(boost::beast::string_view s) { return std::string(s.data(), s.size()); }

template <class Message>
fields fields_of(const Message& m) {
  fields out;
  for (const auto& f : m) out.add(to_string(f.name_string()), to_string(f.value()));
  return out;
}

}  // namespace

// ---- requests ------------------------------------------------------------

struct request_reader::state {
  limits lim;
  std::string pending;  // bytes fed and not yet consumed by a parser
  std::optional<bhttp::request_parser<bhttp::string_body>> parser;
  std::size_t message_bytes = 0;  // consumed by the current parser
  bool header_checked = false;
  bool expects_continue = false;
  bool continue_taken = false;
  int refused = 0;
  std::string_view reason;

  void refuse(refusal r) {
    refused = r.status;
    reason = r.reason;
  }

  // The checks Beast leaves to its caller, once the header is in.
  void check_header() {
    header_checked = true;
    const auto& m = parser->get();
    if (m.version() != http_1_0 && m.version() != http_1_1) return refuse({505, "HTTP version not supported"});
    if (m.version() == http_1_1 && m.find(bhttp::field::host) == m.end())
      return refuse({400, "HTTP/1.1 request without Host"});
    if (const auto expect = m.find(bhttp::field::expect); expect != m.end()) {
      const std::string_view value(expect->value().data(), expect->value().size());
      if (!iequals(value, "100-continue")) return refuse({417, "unsupported Expect"});
      // RFC 9110 §10.1.1: a server ignores 100-continue from an HTTP/1.0 client.
      expects_continue = m.version() == http_1_1;
    }
  }

  void advance() {
    if (refused) return;
    if (!parser) {
      if (pending.empty()) return;
      parser.emplace();
      parser->eager(true);
      parser->header_limit(header_limit(lim));
      parser->body_limit(static_cast<std::uint64_t>(lim.max_body_bytes));
      message_bytes = 0;
      header_checked = expects_continue = continue_taken = false;
    }
    while (!pending.empty() && !parser->is_done()) {
      boost::system::error_code ec;
      const std::size_t used = parser->put(boost::asio::buffer(pending.data(), pending.size()), ec);
      pending.erase(0, used);
      message_bytes += used;
      if (ec == bhttp::error::need_more) break;
      if (ec == bhttp::error::bad_version && names_another_version(pending)) return refuse({505, "HTTP version not supported"});
      if (ec) return refuse(request_refusal(ec));
      if (parser->is_header_done() && !header_checked) {
        check_header();
        if (refused) return;
      }
      if (used == 0) break;
    }
  }
};

request_reader::request_reader(limits l) : s_(std::make_unique<state>()) { s_->lim = l; }
request_reader::~request_reader() = default;
request_reader::request_reader(request_reader&&) noexcept = default;
request_reader& request_reader::operator=(request_reader&&) noexcept = default;

void request_reader::feed(bytes_view bytes) {
  if (s_->refused) return;  // a refused connection reads nothing more
  s_->pending.append(reinterpret_cast<const char*>(bytes.data()), bytes.size());
  s_->advance();
}

decoded<request> request_reader::next() {
  s_->advance();
  if (s_->refused) return decoded<request>::bad(s_->reason);
  if (!s_->parser || !s_->parser->is_done()) return decoded<request>::more();
  auto m = s_->parser->release();
  request r;
  r.method = to_string(m.method_string());
  r.target = to_string(m.target());
  r.version = static_cast<int>(m.version());
  r.headers = fields_of(m);
  r.body = std::move(m.body());
  r.keep_alive = keeps_alive(r.version, r.headers);
  r.expect_continue = s_->expects_continue;
  const std::size_t used = s_->message_bytes;
  s_->parser.reset();
  return decoded<request>::ok(std::move(r), used);
}

bool request_reader::take_continue() {
  s_->advance();
  if (s_->refused || !s_->parser || !s_->expects_continue || s_->continue_taken || s_->parser->is_done()) return false;
  s_->continue_taken = true;
  return true;
}

int request_reader::refusal_status() const { return s_->refused; }
std::size_t request_reader::buffered() const { return s_->pending.size() + (s_->parser ? s_->message_bytes : 0); }

// ---- responses -----------------------------------------------------------

struct response_reader::state {
  limits lim;
  std::string pending;
  std::optional<bhttp::response_parser<bhttp::string_body>> parser;
  std::size_t message_bytes = 0;
  bool next_is_head = false;
  bool eof = false;
  int refused = 0;
  std::string_view reason;

  void refuse(std::string_view why) {
    refused = 502;
    reason = why;
  }

  void advance() {
    if (refused) return;
    if (!parser) {
      if (pending.empty()) {
        if (eof) return;
        return;
      }
      parser.emplace();
      parser->eager(true);
      parser->header_limit(header_limit(lim));
      parser->body_limit(static_cast<std::uint64_t>(lim.max_body_bytes));
      if (next_is_head) parser->skip(true);
      message_bytes = 0;
    }
    while (!pending.empty() && !parser->is_done()) {
      boost::system::error_code ec;
      const std::size_t used = parser->put(boost::asio::buffer(pending.data(), pending.size()), ec);
      pending.erase(0, used);
      message_bytes += used;
      if (ec == bhttp::error::need_more) break;
      if (ec) return refuse(request_refusal(ec).reason);
      if (parser->is_header_done()) {
        const auto v = parser->get().version();
        if (v != http_1_0 && v != http_1_1) return refuse("HTTP version not supported");
      }
      if (used == 0) break;
    }
    if (eof && pending.empty() && !parser->is_done()) {
      boost::system::error_code ec;
      parser->put_eof(ec);
      if (ec) return refuse(request_refusal(ec).reason);
    }
  }
};

response_reader::response_reader(limits l) : s_(std::make_unique<state>()) { s_->lim = l; }
response_reader::~response_reader() = default;
response_reader::response_reader(response_reader&&) noexcept = default;
response_reader& response_reader::operator=(response_reader&&) noexcept = default;

void response_reader::feed(bytes_view bytes) {
  if (s_->refused) return;
  s_->pending.append(reinterpret_cast<const char*>(bytes.data()), bytes.size());
  s_->advance();
}

void response_reader::feed_eof() {
  s_->eof = true;
  s_->advance();
}

void response_reader::expect_head_response() { s_->next_is_head = true; }

decoded<response> response_reader::next() {
  s_->advance();
  if (s_->refused) return decoded<response>::bad(s_->reason);
  if (!s_->parser || !s_->parser->is_done()) {
    if (s_->eof && s_->pending.empty() && !s_->parser) return decoded<response>::more("connection closed");
    return decoded<response>::more();
  }
  auto m = s_->parser->release();
  response r;
  r.status = static_cast<int>(m.result_int());
  r.reason = to_string(m.reason());
  r.version = static_cast<int>(m.version());
  r.headers = fields_of(m);
  r.body = std::move(m.body());
  r.keep_alive = !s_->eof && keeps_alive(r.version, r.headers);
  const std::size_t used = s_->message_bytes;
  // An interim response does not answer the request: a HEAD's final answer is still to come.
  if (r.status >= 200) s_->next_is_head = false;
  s_->parser.reset();
  return decoded<response>::ok(std::move(r), used);
}

int response_reader::refusal_status() const { return s_->refused; }
std::size_t response_reader::buffered() const { return s_->pending.size() + (s_->parser ? s_->message_bytes : 0); }

}  // namespace nudge::http
