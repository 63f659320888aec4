#include "nudge/websub/form.hpp"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <array>
#include <charconv>

namespace nudge::websub {
namespace {

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool unreserved(unsigned char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
         c == '_' || c == '~';
}

/// Decodes one name or value; false on a bad escape.
bool unescape(std::string_view in, std::string& out) {
  out.clear();
  out.reserve(in.size());
  for (std::size_t i = 0; i < in.size(); ++i) {
    const char c = in[i];
    if (c == '+') {
      out.push_back(' ');
    } else if (c == '%') {
      if (i + 2 >= in.size()) return false;
      const int hi = hex_value(in[i + 1]), lo = hex_value(in[i + 2]);
      if (hi < 0 || lo < 0) return false;
      out.push_back(static_cast<char>(hi * 16 + lo));
      i += 2;
    } else {
      out.push_back(c);
    }
  }
  return true;
}

std::string hex_of(const unsigned char* p, std::size_t n) {
  static constexpr char digits[] = "0123456789abcdef";
  std::string s(n * 2, '0');
  for (std::size_t i = 0; i < n; ++i) {
    s[2 * i] = digits[p[i] >> 4];
    s[2 * i + 1] = digits[p[i] & 15];
  }
  return s;
}

const EVP_MD* digest_named(std::string_view name) {
  if (name == "sha1") return EVP_sha1();
  if (name == "sha256") return EVP_sha256();
  if (name == "sha384") return EVP_sha384();
  if (name == "sha512") return EVP_sha512();
  return nullptr;
}

std::string hmac_hex(const EVP_MD* md, std::string_view secret, std::string_view body) {
  std::array<unsigned char, EVP_MAX_MD_SIZE> out{};
  unsigned int len = 0;
  if (!HMAC(md, secret.data(), static_cast<int>(secret.size()), reinterpret_cast<const unsigned char*>(body.data()),
            body.size(), out.data(), &len))
    return {};
  return hex_of(out.data(), len);
}

}  // namespace

std::optional<std::string_view> form::find(std::string_view name) const {
  for (const auto& [n, v] : pairs)
    if (n == name) return std::string_view(v);
  return std::nullopt;
}

std::vector<std::string_view> form::all(std::string_view name) const {
  std::vector<std::string_view> out;
  for (const auto& [n, v] : pairs)
    if (n == name) out.emplace_back(v);
  return out;
}

decoded<form> decode_form(std::string_view text, const form_limits& l) {
  using result = decoded<form>;
  if (text.size() > l.max_bytes) return result::bad("form too long");
  form f;
  std::size_t start = 0;
  while (start <= text.size()) {
    std::size_t end = text.find('&', start);
    if (end == std::string_view::npos) end = text.size();
    const std::string_view piece = text.substr(start, end - start);
    start = end + 1;
    if (piece.empty()) {
      if (end == text.size()) break;
      continue;
    }
    if (f.pairs.size() == l.max_pairs) return result::bad("too many form fields");
    const std::size_t eq = piece.find('=');
    std::string name, value;
    if (!unescape(piece.substr(0, eq), name)) return result::bad("bad percent-escape in a form name");
    if (eq != std::string_view::npos && !unescape(piece.substr(eq + 1), value))
      return result::bad("bad percent-escape in a form value");
    f.pairs.emplace_back(std::move(name), std::move(value));
    if (end == text.size()) break;
  }
  return result::ok(std::move(f), text.size());
}

std::string percent_encode(std::string_view s) {
  static constexpr char digits[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(s.size());
  for (const char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if (unreserved(c)) {
      out.push_back(ch);
    } else {
      out.push_back('%');
      out.push_back(digits[c >> 4]);
      out.push_back(digits[c & 15]);
    }
  }
  return out;
}

std::string encode_form(const form& f) {
  std::string out;
  for (const auto& [n, v] : f.pairs) {
    if (!out.empty()) out.push_back('&');
    out += percent_encode(n);
    out.push_back('=');
    out += percent_encode(v);
  }
  return out;
}

decoded<http_url> parse_http_url(std::string_view url) {
  using result = decoded<http_url>;
  constexpr std::string_view scheme = "http://";
  if (url.size() > 2048) return result::bad("URL too long");
  if (url.size() < scheme.size()) return result::bad("not an http:// URL");
  for (std::size_t i = 0; i < scheme.size(); ++i)
    if (static_cast<char>(url[i] | (i < 4 ? 0x20 : 0)) != scheme[i]) return result::bad("not an http:// URL");
  std::string_view rest = url.substr(scheme.size());
  if (rest.find('#') != std::string_view::npos) return result::bad("a URL with a fragment");
  const std::size_t slash = rest.find_first_of("/?");
  const std::string_view authority = rest.substr(0, slash);
  if (authority.empty()) return result::bad("a URL without a host");
  if (authority.find('@') != std::string_view::npos) return result::bad("a URL with user information");
  http_url u;
  u.authority = std::string(authority);
  std::string_view host = authority;
  std::uint16_t port = 80;
  std::size_t colon = std::string_view::npos;
  if (authority.front() == '[') {
    const std::size_t close = authority.find(']');
    if (close == std::string_view::npos) return result::bad("an unclosed IPv6 literal");
    host = authority.substr(0, close + 1);
    if (close + 1 < authority.size()) {
      if (authority[close + 1] != ':') return result::bad("junk after an IPv6 literal");
      colon = close + 1;
    }
  } else {
    colon = authority.find(':');
    if (colon != std::string_view::npos) host = authority.substr(0, colon);
  }
  if (colon != std::string_view::npos) {
    const std::string_view digits = authority.substr(colon + 1);
    unsigned value = 0;
    const auto [p, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), value);
    if (digits.empty() || ec != std::errc{} || p != digits.data() + digits.size() || value == 0 || value > 65535)
      return result::bad("a bad port in a URL");
    port = static_cast<std::uint16_t>(value);
  }
  const auto at = ip_endpoint::parse(std::string(host) + ":" + std::to_string(port));
  if (!at) return result::bad("a URL host that is not an IP literal");
  u.at = *at;
  if (slash != std::string_view::npos) {
    u.path = std::string(rest.substr(slash));
    if (u.path.front() == '?') u.path.insert(u.path.begin(), '/');
  }
  for (const char c : u.path)
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f) return result::bad("a URL with spaces or controls");
  return result::ok(std::move(u), url.size());
}

std::string to_string(const http_url& u) { return "http://" + u.authority + u.path; }

std::string topic_url(const ip_endpoint& hub, std::string_view mailbox) {
  return "http://" + hub.to_string() + std::string(topic_prefix) + percent_encode(mailbox);
}

std::optional<std::string> mailbox_of_topic(std::string_view topic) {
  const auto u = parse_http_url(topic);
  if (!u.complete()) return std::nullopt;
  const std::string_view path = u.value.path;
  if (path.substr(0, topic_prefix.size()) != topic_prefix) return std::nullopt;
  const std::string_view encoded = path.substr(topic_prefix.size());
  if (encoded.empty() || encoded.find_first_of("?/") != std::string_view::npos) return std::nullopt;
  std::string name;
  // A topic path never carries '+' for a space: decode only the escapes.
  for (std::size_t i = 0; i < encoded.size(); ++i) {
    if (encoded[i] != '%') {
      name.push_back(encoded[i]);
      continue;
    }
    if (i + 2 >= encoded.size()) return std::nullopt;
    const int hi = hex_value(encoded[i + 1]), lo = hex_value(encoded[i + 2]);
    if (hi < 0 || lo < 0) return std::nullopt;
    name.push_back(static_cast<char>(hi * 16 + lo));
    i += 2;
  }
  return name;
}

std::string hmac_sha256_hex(std::string_view secret, std::string_view body) { return hmac_hex(EVP_sha256(), secret, body); }

std::string signature_header(std::string_view secret, std::string_view body) {
  return "sha256=" + hmac_sha256_hex(secret, body);
}

bool signature_matches(std::string_view header, std::string_view secret, std::string_view body) {
  const std::size_t eq = header.find('=');
  if (eq == std::string_view::npos) return false;
  const EVP_MD* md = digest_named(header.substr(0, eq));
  if (!md) return false;
  const std::string want = hmac_hex(md, secret, body);
  const std::string_view got = header.substr(eq + 1);
  if (want.empty() || got.size() != want.size()) return false;
  unsigned char diff = 0;
  for (std::size_t i = 0; i < want.size(); ++i)
    diff |= static_cast<unsigned char>(want[i] ^ (got[i] | 0x20));  // hex digits, any case
  return diff == 0;
}

std::string event_body(std::string_view topic, std::uint64_t event_id, std::int64_t created_ms) {
  std::string out = "{\"topic\":\"";
  for (const char c : topic) {
    if (c == '"' || c == '\\') out.push_back('\\');
    out.push_back(c);
  }
  out += "\",\"event\":" + std::to_string(event_id) + ",\"created_ms\":" + std::to_string(created_ms) + "}\n";
  return out;
}

std::optional<std::int64_t> created_ms_of(std::string_view body) {
  constexpr std::string_view key = "\"created_ms\":";
  const std::size_t at = body.rfind(key);
  if (at == std::string_view::npos) return std::nullopt;
  const std::string_view digits = body.substr(at + key.size());
  std::int64_t v = 0;
  const auto [p, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), v);
  if (ec != std::errc{} || p == digits.data()) return std::nullopt;
  return v;
}

}  // namespace nudge::websub
