// The public codec: one entry per operation, dispatching on the encoding.
#include "nudge/pollbus/codec.hpp"

#include "encodings.hpp"

namespace nudge::pollbus {

std::string encode_poll_request(const message& m, encoding e) {
  return e == encoding::soap ? soap::encode_request(m) : json::encode_request(m);
}
std::string encode_poll_response(std::span<const message> messages, encoding e) {
  return e == encoding::soap ? soap::encode_response(messages) : json::encode_response(messages);
}
decoded<message> decode_poll_request(std::string_view body, encoding e) {
  return e == encoding::soap ? soap::decode_request(body) : json::decode_request(body);
}
decoded<std::vector<message>> decode_poll_response(std::string_view body, encoding e) {
  return e == encoding::soap ? soap::decode_response(body) : json::decode_response(body);
}
std::string encode_fault(std::string_view reason, bool client_fault, encoding e) {
  return e == encoding::soap ? soap::encode_fault(reason, client_fault) : json::encode_fault(reason, client_fault);
}
std::optional<std::string> decode_fault(std::string_view body, encoding e) {
  return e == encoding::soap ? soap::decode_fault(body) : json::decode_fault(body);
}

}  // namespace nudge::pollbus
