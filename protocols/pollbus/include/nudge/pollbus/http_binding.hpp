#pragma once
// Whole HTTP exchanges of the bus: `POST /Bus.asmx` with the header fields
// Mono's SoapHttpClientProtocol sends (in its order), and the answers an
// ASMX server (IIS 7.5, ASP.NET 4) gives. Deterministic: nothing depends on a
// clock unless the caller passes a Date.
//
// Request (SOAP; 292 header bytes when Host is "127.0.0.1:" + 5 digits):
//   POST /Bus.asmx HTTP/1.1
//   User-Agent: Mozilla/4.0 (compatible; MSIE 6.0; MS Web Services Client Protocol 4.0.30319.42000)
//   Content-Type: text/xml; charset=utf-8
//   SOAPAction: "http://tempuri.org/Poll"
//   Content-Length: N
//   Expect: 100-continue
//   Connection: keep-alive
//   Host: HOST
// (json: Content-Type: application/json; charset=utf-8 and no SOAPAction.)
//
// Response:
//   HTTP/1.1 200 OK
//   Cache-Control: private, max-age=0
//   Content-Type: text/xml; charset=utf-8
//   Server: Microsoft-IIS/7.5
//   X-AspNet-Version: 4.0.30319
//   X-Powered-By: ASP.NET
//   [Date: ... when given]
//   Content-Length: N
// A refused poll (bad XML, unknown xsi:type, missing field) is answered as
// ASMX does: HTTP 500 with a SOAP Fault (faultcode soap:Client); in the json
// profile 400 with {"error":...}. Other paths 404, other methods 405.
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "nudge/http/message.hpp"
#include "nudge/pollbus/codec.hpp"
#include "nudge/pollbus/messages.hpp"

namespace nudge::pollbus {

inline constexpr std::string_view service_path = "/Bus.asmx";
inline constexpr std::string_view soap_action = "\"http://tempuri.org/Poll\"";
inline constexpr std::string_view dotnet_user_agent =
    "Mozilla/4.0 (compatible; MSIE 6.0; MS Web Services Client Protocol 4.0.30319.42000)";

struct request_options {
  std::string host = "127.0.0.1";  // the Host field ("name:port")
  std::string path = std::string(service_path);
  bool expect_continue = true;     // .NET's default (ServicePointManager.Expect100Continue)
  bool keep_alive = true;          // false: Connection: close
};

struct response_options {
  bool keep_alive = true;          // false: adds Connection: close
  std::optional<std::int64_t> date_unix_seconds;  // adds an IMF-fixdate Date field
};

// ---- client side -------------------------------------------------------

http::request poll_request(const message& m, encoding e, const request_options& o = {});
/// The messages of a 200 answer; a fault (500 SOAP / 400 json) or another
/// status is malformed, reason "server fault" / "unexpected HTTP status"
/// (the fault's text is available with decode_fault on the body).
decoded<std::vector<message>> read_poll_response(const http::response& r);

// ---- server side -------------------------------------------------------

/// What a request asks of the bus.
struct bus_call {
  enum class kind : std::uint8_t {
    poll,                  // POST to the service: `msg` in encoding `enc`
    wsdl,                  // GET ?WSDL
    not_found,             // another path: 404
    method_not_allowed,    // neither POST nor GET: 405
    unsupported_media,     // a POST whose Content-Type is neither text/xml nor application/json: 415
  };
  kind what = kind::poll;
  encoding enc = encoding::soap;
  message msg;
};

/// Routes a request and decodes a poll's body. Malformed: the body could not
/// be decoded (answer with refusal_response(request, reason)).
decoded<bus_call> read_bus_request(const http::request& r);
/// The answer to a poll.
http::response poll_response(std::span<const message> messages, encoding e, const response_options& o = {});
/// The answer to a malformed poll: 500 + SOAP Fault (soap), 400 (json).
http::response refusal_response(const http::request& r, std::string_view reason, const response_options& o = {});
/// The answer to the other kinds (wsdl, 404, 405, 415). The WSDL's
/// soap:address is "http://HOST" + `service` (the path the WSDL was asked at,
/// so /fixed/Bus.asmx?WSDL points its clients at /fixed/Bus.asmx).
http::response route_response(const bus_call& call, const http::request& r, const response_options& o = {},
                              std::string_view service = service_path);

/// The encoding a Content-Type names (text/xml → soap, application/json → json).
std::optional<encoding> encoding_of_content_type(std::string_view content_type);

}  // namespace nudge::pollbus
