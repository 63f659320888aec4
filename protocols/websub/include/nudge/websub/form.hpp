#pragma once
// WebSub's wire pieces that are not HTTP itself: the
// application/x-www-form-urlencoded bodies and query strings a subscriber and
// a publisher send (`hub.mode=subscribe&hub.topic=...`), the http:// URLs of
// topics and callbacks, and the X-Hub-Signature HMAC. Decoding is bounded:
// a complete value or a malformed one with its reason, never an exception.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "nudge/protocol/decode.hpp"
#include "nudge/protocol/endpoint.hpp"

namespace nudge::websub {

using protocol::decoded;
using protocol::ip_endpoint;

/// name=value pairs in the order they came, names and values decoded.
struct form {
  std::vector<std::pair<std::string, std::string>> pairs;

  /// The first value of `name`.
  std::optional<std::string_view> find(std::string_view name) const;
  /// Every value of `name`, in order (a publisher may name several hub.url).
  std::vector<std::string_view> all(std::string_view name) const;
  void add(std::string name, std::string value) { pairs.emplace_back(std::move(name), std::move(value)); }
};

struct form_limits {
  std::size_t max_bytes = 16 * 1024;
  std::size_t max_pairs = 64;
};

/// Decodes `a=b&c=d` ('+' is a space, %XX an octet). Empty pieces (`a&&b`)
/// are skipped; a bad escape, too many pairs or too many bytes are malformed.
decoded<form> decode_form(std::string_view text, const form_limits& l = {});
/// Encodes pairs as a form (RFC 3986 unreserved characters kept, the rest %XX).
std::string encode_form(const form& f);
/// Percent-encodes everything but RFC 3986's unreserved characters.
std::string percent_encode(std::string_view s);

/// An http:// URL with an IP literal host (nudge resolves no names).
struct http_url {
  ip_endpoint at;          // port 80 when the URL gives none
  std::string authority;   // as written ("127.0.0.1:8080"): the Host field
  std::string path = "/";  // path and query, as written ("/cb?id=3")
};
/// Reads `http://host[:port][/path][?query]`; hosts are IPv4 literals or
/// bracketed IPv6 literals. Fragments, user info and https are refused.
decoded<http_url> parse_http_url(std::string_view url);
std::string to_string(const http_url& u);

/// The hub's topics are its mailboxes: `http://<hub>/topics/<mailbox, percent-encoded>`.
inline constexpr std::string_view topic_prefix = "/topics/";
std::string topic_url(const ip_endpoint& hub, std::string_view mailbox);
/// The mailbox a topic URL names (any authority), or nothing.
std::optional<std::string> mailbox_of_topic(std::string_view topic_url);

/// hex(HMAC-SHA256(secret, body)), lower case, 64 digits.
std::string hmac_sha256_hex(std::string_view secret, std::string_view body);
/// "sha256=<hex>": the X-Hub-Signature value for `body`.
std::string signature_header(std::string_view secret, std::string_view body);
/// Whether an X-Hub-Signature value (sha1/sha256/sha384/sha512=hex) matches
/// `body` under `secret`; compared in constant time.
bool signature_matches(std::string_view header, std::string_view secret, std::string_view body);

/// The content the hub distributes for an event: a small JSON document with
/// the event's id and creation time (milliseconds on the run's clock), so a
/// subscriber measures latency as now − created.
std::string event_body(std::string_view topic, std::uint64_t event_id, std::int64_t created_ms);
/// The creation time an event body carries, or nothing.
std::optional<std::int64_t> created_ms_of(std::string_view body);

}  // namespace nudge::websub
