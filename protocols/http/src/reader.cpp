#include "nudge/http/reader.hpp"

// Beast 1.81's content_length_unchecked(), inlined into put(), trips GCC 12's
// -Wmaybe-uninitialized in optimised builds (a false positive on boost::optional).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

#include <algorithm>
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

struct refusal {
  int status;
  std::string_view reason;
};

// Beast's parse errors as what a server answers.
refusal refusal_of(const boost::system::error_code& ec) {
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
  if (ec == bhttp::error::bad_status) return {400, "bad status code"};
  if (ec == bhttp::error::bad_reason) return {400, "bad reason phrase"};
  if (ec == bhttp::error::partial_message) return {400, "connection ended inside a message"};
  return {400, "malformed HTTP message"};
}

// Beast refuses versions other than 1.0 and 1.1 as it refuses garbage; a
// request line whose third token is a well-formed "HTTP/d.d" deserves 505.
bool names_another_version(std::string_view wire) {
  const auto first = wire.find(' ');
  const auto second = first == std::string_view::npos ? first : wire.find(' ', first + 1);
  if (second == std::string_view::npos || wire.size() < second + 9) return false;
  const std::string_view v = wire.substr(second + 1, 8);
  return v.substr(0, 5) == "HTTP/" && v[5] >= '0' && v[5] <= '9' && v[6] == '.' && v[7] >= '0' && v[7] <= '9';
}

std::string to_string(boost::beast::string_view s) { return std::string(s.data(), s.size()); }

template <class Message>
fields fields_of(const Message& m) {
  fields out;
  for (const auto& f : m) out.add(to_string(f.name_string()), to_string(f.value()));
  return out;
}

// What both readers share. Beast parses a start line as soon as it can, but
// after one need_more it waits for the end of the header before looking
// again, so when it refuses would depend on how TCP split the bytes. Until a
// header is whole, each arrival is therefore parsed from the first byte by a
// fresh parser: the outcome is a function of the bytes alone, garbage is still
// refused at once, and the header limit is checked here (a fresh parser only
// ever sees the first max_header_bytes). Quadratic in the header's size at
// worst, and the header is bounded.
template <bool IsRequest>
struct reader_core {
  using parser_t = bhttp::parser<IsRequest, bhttp::string_body>;

  limits lim;
  std::string pending;               // bytes fed and not yet consumed by a parser
  std::optional<parser_t> parser;    // set once a header is whole
  std::size_t message_bytes = 0;     // consumed by `parser`
  bool fresh = false;                // bytes arrived since the last attempt
  bool eof = false;
  bool next_is_head = false;         // responses: the answer to a HEAD
  int refused = 0;
  std::string_view reason;

  void refuse(refusal r) {
    refused = r.status;
    reason = r.reason;
  }

  void configure(parser_t& p) const {
    p.eager(true);
    p.header_limit(static_cast<std::uint32_t>(std::min<std::size_t>(lim.max_header_bytes, 0xffffffffu)));
    p.body_limit(static_cast<std::uint64_t>(lim.max_body_bytes));
    if constexpr (!IsRequest)
      if (next_is_head) p.skip(true);
  }

  // Returns false if refused. `check` validates a header once whole.
  template <class Check>
  bool advance(Check&& check) {
    if (refused) return false;
    if (!parser) {
      if (pending.empty() || !fresh) return finish_at_eof();
      fresh = false;
      parser.emplace();
      configure(*parser);
      // Not eager for this put: it stops after the header, so `used` is the
      // header's size (a fresh parser does not apply Beast's header limit).
      parser->eager(false);
      boost::system::error_code ec;
      // Only the bytes a header may fill are shown, so a fault past the limit
      // is not seen in one arrival and missed in another.
      const std::size_t shown = std::min(pending.size(), lim.max_header_bytes);
      const std::size_t used = parser->put(boost::asio::buffer(pending.data(), shown), ec);
      parser->eager(true);
      if (ec == bhttp::error::need_more && !parser->is_header_done()) {
        parser.reset();
        if (pending.size() > lim.max_header_bytes) return refuse({431, "header fields exceed the limit"}), false;
        return finish_at_eof();
      }
      if (parser->is_header_done() && used > lim.max_header_bytes)
        return refuse({431, "header fields exceed the limit"}), false;
      if (ec && ec != bhttp::error::need_more) {
        if constexpr (IsRequest)
          if (ec == bhttp::error::bad_version && names_another_version(pending))
            return refuse({505, "HTTP version not supported"}), false;
        return refuse(refusal_of(ec)), false;
      }
      pending.erase(0, used);
      message_bytes = used;
      if (!check(parser->get())) return false;
    }
    while (!pending.empty() && !parser->is_done()) {
      boost::system::error_code ec;
      const std::size_t used = parser->put(boost::asio::buffer(pending.data(), pending.size()), ec);
      pending.erase(0, used);
      message_bytes += used;
      if (ec == bhttp::error::need_more) break;
      if (ec) return refuse(refusal_of(ec)), false;
      if (used == 0) break;
    }
    return finish_at_eof();
  }

  bool finish_at_eof() {
    if (!eof || refused) return !refused;
    if (parser && !parser->is_done() && pending.empty()) {
      boost::system::error_code ec;
      parser->put_eof(ec);
      if (ec) return refuse(refusal_of(ec)), false;
    } else if (!parser && !pending.empty()) {
      return refuse({400, "connection ended inside a message"}), false;
    }
    return true;
  }

  void feed(bytes_view bytes) {
    if (refused || bytes.empty()) return;
    pending.append(reinterpret_cast<const char*>(bytes.data()), bytes.size());
    fresh = true;
  }

  bool done() const { return parser && parser->is_done(); }
  std::size_t buffered() const { return pending.size() + (parser ? message_bytes : 0); }
};

}  // namespace

// ---- requests ------------------------------------------------------------

struct request_reader::state : reader_core<true> {
  bool expects_continue = false;
  bool continue_taken = false;

  bool advance() {
    return reader_core::advance([this](const bhttp::request<bhttp::string_body>& m) {
      expects_continue = continue_taken = false;
      if (m.version() != http_1_0 && m.version() != http_1_1) return refuse({505, "HTTP version not supported"}), false;
      if (m.version() == http_1_1 && m.find(bhttp::field::host) == m.end())
        return refuse({400, "HTTP/1.1 request without Host"}), false;
      if (const auto expect = m.find(bhttp::field::expect); expect != m.end()) {
        const std::string_view value(expect->value().data(), expect->value().size());
        if (!iequals(value, "100-continue")) return refuse({417, "unsupported Expect"}), false;
        // RFC 9110 §10.1.1: a server ignores 100-continue from an HTTP/1.0 client.
        expects_continue = m.version() == http_1_1;
      }
      return true;
    });
  }
};

request_reader::request_reader(limits l) : s_(std::make_unique<state>()) { s_->lim = l; }
request_reader::~request_reader() = default;
request_reader::request_reader(request_reader&&) noexcept = default;
request_reader& request_reader::operator=(request_reader&&) noexcept = default;

void request_reader::feed(bytes_view bytes) {
  s_->feed(bytes);
  s_->advance();
}

decoded<request> request_reader::next() {
  if (!s_->advance()) return decoded<request>::bad(s_->reason);
  if (!s_->done()) return decoded<request>::more();
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
  s_->fresh = true;  // the bytes after this request are the next one's
  return decoded<request>::ok(std::move(r), used);
}

bool request_reader::take_continue() {
  if (!s_->advance() || !s_->parser || !s_->expects_continue || s_->continue_taken || s_->parser->is_done()) return false;
  s_->continue_taken = true;
  return true;
}

int request_reader::refusal_status() const { return s_->refused; }
std::size_t request_reader::buffered() const { return s_->buffered(); }

// ---- responses -----------------------------------------------------------

struct response_reader::state : reader_core<false> {
  bool advance() {
    return reader_core::advance([this](const bhttp::response<bhttp::string_body>& m) {
      if (m.version() != http_1_0 && m.version() != http_1_1) return refuse({502, "HTTP version not supported"}), false;
      return true;
    });
  }
};

response_reader::response_reader(limits l) : s_(std::make_unique<state>()) { s_->lim = l; }
response_reader::~response_reader() = default;
response_reader::response_reader(response_reader&&) noexcept = default;
response_reader& response_reader::operator=(response_reader&&) noexcept = default;

void response_reader::feed(bytes_view bytes) {
  s_->feed(bytes);
  s_->advance();
}

void response_reader::feed_eof() {
  s_->eof = true;
  s_->advance();
}

void response_reader::expect_head_response() { s_->next_is_head = true; }

decoded<response> response_reader::next() {
  if (!s_->advance()) return decoded<response>::bad(s_->reason);
  if (!s_->done()) return decoded<response>::more(s_->eof ? "connection closed" : "need more bytes");
  auto m = s_->parser->release();
  response r;
  r.status = static_cast<int>(m.result_int());
  r.reason = to_string(m.reason());
  r.version = static_cast<int>(m.version());
  r.headers = fields_of(m);
  r.body = std::move(m.body());
  r.keep_alive = !(s_->eof && s_->pending.empty() && m.need_eof()) && keeps_alive(r.version, r.headers);
  const std::size_t used = s_->message_bytes;
  // An interim response does not answer the request: a HEAD's final answer is still to come.
  if (r.status >= 200) s_->next_is_head = false;
  s_->parser.reset();
  s_->fresh = true;
  return decoded<response>::ok(std::move(r), used);
}

// A response reader's refusals all mean the peer broke HTTP: 502, as a proxy says.
int response_reader::refusal_status() const { return s_->refused ? 502 : 0; }
std::size_t response_reader::buffered() const { return s_->buffered(); }

}  // namespace nudge::http
