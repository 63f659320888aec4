#include "nudge/pollbus/http_binding.hpp"

#include "nudge/http/writer.hpp"

namespace nudge::pollbus {

namespace {

constexpr std::string_view soap_content_type = "text/xml; charset=utf-8";
constexpr std::string_view json_content_type = "application/json; charset=utf-8";

std::string_view content_type_of(encoding e) { return e == encoding::soap ? soap_content_type : json_content_type; }

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// The fields IIS 7.5 and ASP.NET 4 put on an .asmx answer, in their order.
http::response asmx_response(int status, encoding e, std::string body, const response_options& o) {
  http::response r;
  r.status = status;
  r.reason = std::string(http::reason_phrase(status));
  r.body = std::move(body);
  r.headers.add("Cache-Control", "private, max-age=0");
  r.headers.add("Content-Type", std::string(content_type_of(e)));
  r.headers.add("Server", "Microsoft-IIS/7.5");
  r.headers.add("X-AspNet-Version", "4.0.30319");
  r.headers.add("X-Powered-By", "ASP.NET");
  if (o.date_unix_seconds) r.headers.add("Date", http::imf_fixdate(*o.date_unix_seconds));
  if (!o.keep_alive) r.headers.add("Connection", "close");
  r.headers.add("Content-Length", std::to_string(r.body.size()));
  r.keep_alive = o.keep_alive;
  return r;
}

}  // namespace

std::optional<encoding> encoding_of_content_type(std::string_view content_type) {
  const std::string_view media = trim(content_type.substr(0, content_type.find(';')));
  if (http::iequals(media, "text/xml")) return encoding::soap;
  if (http::iequals(media, "application/json")) return encoding::json;
  return std::nullopt;
}

http::request poll_request(const message& m, encoding e, const request_options& o) {
  http::request r;
  r.method = "POST";
  r.target = o.path;
  r.body = encode_poll_request(m, e);
  // Mono's SoapHttpClientProtocol order (captured, wave2-protocols.md §1.1).
  r.headers.add("User-Agent", std::string(dotnet_user_agent));
  r.headers.add("Content-Type", std::string(content_type_of(e)));
  if (e == encoding::soap) r.headers.add("SOAPAction", std::string(soap_action));
  r.headers.add("Content-Length", std::to_string(r.body.size()));
  if (o.expect_continue) r.headers.add("Expect", "100-continue");
  r.headers.add("Connection", o.keep_alive ? "keep-alive" : "close");
  r.headers.add("Host", o.host);
  r.keep_alive = o.keep_alive;
  r.expect_continue = o.expect_continue;
  return r;
}

decoded<std::vector<message>> read_poll_response(const http::response& r) {
  using out_t = decoded<std::vector<message>>;
  const auto type = r.headers.find("Content-Type");
  const auto e = type ? encoding_of_content_type(*type) : std::nullopt;
  if (r.status != 200) {
    if (e && decode_fault(r.body, *e)) return out_t::bad("server fault");
    return out_t::bad("unexpected HTTP status");
  }
  if (!e) return out_t::bad("response is neither text/xml nor application/json");
  return decode_poll_response(r.body, *e);
}

decoded<bus_call> read_bus_request(const http::request& r) {
  using out_t = decoded<bus_call>;
  const std::string_view target = r.target;
  const auto question = target.find('?');
  const std::string_view path = target.substr(0, question);
  const std::string_view query = question == std::string_view::npos ? std::string_view() : target.substr(question + 1);
  bus_call call;
  // IIS paths are case-insensitive.
  if (!http::iequals(path, service_path)) {
    call.what = bus_call::kind::not_found;
    return out_t::ok(call, 0);
  }
  if (r.method == "GET") {
    call.what = http::iequals(query, "wsdl") ? bus_call::kind::wsdl : bus_call::kind::not_found;
    return out_t::ok(call, 0);
  }
  if (r.method != "POST") {
    call.what = bus_call::kind::method_not_allowed;
    return out_t::ok(call, 0);
  }
  const auto type = r.headers.find("Content-Type");
  const auto e = type ? encoding_of_content_type(*type) : std::nullopt;
  if (!e) {
    call.what = bus_call::kind::unsupported_media;
    return out_t::ok(call, 0);
  }
  call.enc = *e;
  if (*e == encoding::soap) {
    // ASMX dispatches SOAP 1.1 on SOAPAction, quoted or not.
    std::string_view action = trim(r.headers.find("SOAPAction").value_or(""));
    if (action.size() >= 2 && action.front() == '"' && action.back() == '"') action = action.substr(1, action.size() - 2);
    if (action != soap_action.substr(1, soap_action.size() - 2)) return out_t::bad("unknown SOAPAction");
  }
  auto body = decode_poll_request(r.body, *e);
  if (!body.complete()) return out_t::bad(body.reason);
  call.msg = std::move(body.value);
  return out_t::ok(std::move(call), r.body.size());
}

http::response poll_response(std::span<const message> messages, encoding e, const response_options& o) {
  return asmx_response(200, e, encode_poll_response(messages, e), o);
}

http::response refusal_response(const http::request& r, std::string_view reason, const response_options& o) {
  const auto type = r.headers.find("Content-Type");
  const encoding e = (type ? encoding_of_content_type(*type) : std::nullopt).value_or(encoding::soap);
  // ASMX answers a request it cannot read with 500 and a soap:Client fault.
  return asmx_response(e == encoding::soap ? 500 : 400, e, encode_fault(reason, /*client_fault=*/true, e), o);
}

http::response route_response(const bus_call& call, const http::request& r, const response_options& o,
                              std::string_view service) {
  switch (call.what) {
    case bus_call::kind::wsdl: {
      const std::string host(r.headers.find("Host").value_or("localhost"));
      return asmx_response(200, encoding::soap, wsdl("http://" + host + std::string(service)), o);
    }
    case bus_call::kind::not_found: return http::plain_response(404, "not found\n");
    case bus_call::kind::method_not_allowed: {
      auto out = http::plain_response(405, "method not allowed\n");
      out.headers.add("Allow", "GET, POST");
      return out;
    }
    case bus_call::kind::unsupported_media: return http::plain_response(415, "text/xml or application/json\n");
    case bus_call::kind::poll: break;
  }
  return http::plain_response(500, "a poll is answered with poll_response\n");
}

}  // namespace nudge::pollbus
