#pragma once
// HTTP/1.1 messages as the protocol families see them: a start line, the
// header fields in wire order (so serialising is exact and deterministic) and
// a body held as text. Readers (nudge/http/reader.hpp) fill them from bytes,
// writers (nudge/http/writer.hpp) turn them back into bytes.
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace nudge::http {

struct field {
  std::string name;
  std::string value;
  friend bool operator==(const field&, const field&) = default;
};

/// Header fields in the order they travel. Lookups ignore the name's case.
struct fields {
  std::vector<field> list;

  /// The first value of `name`, or nothing.
  std::optional<std::string_view> find(std::string_view name) const;
  bool has(std::string_view name) const { return find(name).has_value(); }
  /// Appends (never replaces): the order of calls is the order on the wire.
  void add(std::string name, std::string value) { list.push_back({std::move(name), std::move(value)}); }
  /// Replaces the first `name` in place, or appends it.
  void set(std::string_view name, std::string value);
  /// Removes every `name`.
  void erase(std::string_view name);
  friend bool operator==(const fields&, const fields&) = default;
};

/// HTTP version as major*10+minor: 11 for HTTP/1.1, 10 for HTTP/1.0.
inline constexpr int http_1_0 = 10;
inline constexpr int http_1_1 = 11;

struct request {
  std::string method = "GET";
  std::string target = "/";
  int version = http_1_1;
  fields headers;
  std::string body;
  /// Set by the reader: whether the connection stays open after the answer
  /// (HTTP/1.1 unless `Connection: close`; HTTP/1.0 only with `keep-alive`).
  bool keep_alive = true;
  /// Set by the reader: the request carried `Expect: 100-continue`.
  bool expect_continue = false;
  friend bool operator==(const request&, const request&) = default;
};

struct response {
  int status = 200;
  std::string reason = "OK";
  int version = http_1_1;
  fields headers;
  std::string body;
  /// Set by the reader, as for request.
  bool keep_alive = true;
  friend bool operator==(const response&, const response&) = default;
};

/// The reason phrase HTTP/1.1 (RFC 9110) gives a status, "Unknown" otherwise.
std::string_view reason_phrase(int status);

/// Whether a connection that carried `version` and these fields stays open
/// (HTTP/1.1 unless `Connection: close`; HTTP/1.0 only with `keep-alive`).
bool keeps_alive(int version, const fields& headers);

/// Case-insensitive ASCII comparison (header names, tokens).
bool iequals(std::string_view a, std::string_view b);

/// Whether a comma-separated header value (e.g. `Connection: keep-alive, Upgrade`)
/// holds `token`, ignoring case and spaces.
bool has_token(std::string_view list_value, std::string_view token);

}  // namespace nudge::http
