// The JSON profile: the same messages and field names as the SOAP encoding,
// the xsi:type as "type". Written with nlohmann's ordered_json (fixed member
// order, compact), read without exceptions.
#include <limits>
#include <nlohmann/json.hpp>

#include "encodings.hpp"

namespace nudge::pollbus::json {

namespace {

using ordered = nlohmann::ordered_json;

std::string dump(const ordered& j) {
  // Invalid UTF-8 in a string is replaced, never thrown about.
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

ordered to_json(const message& m) {
  ordered j;
  j["type"] = wire_name(m.type);
  j["AgentId"] = guid_text(m.agent_id);
  j["TimeStamp"] = timestamp_text(m.timestamp_ms);
  switch (m.type) {
    case message_type::register_agent:
      j["ComputerName"] = m.computer_name;
      j["UserInfo"] = m.user_info;
      break;
    case message_type::poll_interval: j["IntervalInMilliseconds"] = m.interval_ms; break;
    case message_type::poll_mode: j["Mode"] = m.mode == poll_mode::register_agent ? "Register" : "Poll"; break;
    case message_type::chat: j["Text"] = m.text; break;
    default: break;
  }
  return j;
}

const nlohmann::json* member(const nlohmann::json& j, const char* name) {
  const auto it = j.find(name);
  return it == j.end() ? nullptr : &*it;
}

std::string_view string_member(const nlohmann::json& j, const char* name, std::string& out) {
  const auto* v = member(j, name);
  if (!v || v->is_null()) return {};
  if (!v->is_string()) return "a string field is not a string";
  out = v->get_ref<const std::string&>();
  return {};
}

std::string_view from_json(const nlohmann::json& j, message& m) {
  if (!j.is_object()) return "message is not an object";
  const auto* type = member(j, "type");
  if (!type || !type->is_string()) return "message without type";
  const auto t = message_type_from_wire(type->get_ref<const std::string&>());
  if (!t) return "unknown type";
  m.type = *t;
  const auto* agent = member(j, "AgentId");
  if (!agent || !agent->is_string()) return "message without AgentId";
  const auto id = parse_guid(agent->get_ref<const std::string&>());
  if (!id) return "AgentId is not a GUID";
  m.agent_id = *id;
  const auto* stamp = member(j, "TimeStamp");
  if (!stamp || !stamp->is_string()) return "message without TimeStamp";
  const auto ms = parse_timestamp(stamp->get_ref<const std::string&>());
  if (!ms) return "TimeStamp is not an xs:dateTime";
  m.timestamp_ms = *ms;
  switch (m.type) {
    case message_type::register_agent:
      if (auto why = string_member(j, "ComputerName", m.computer_name); !why.empty()) return why;
      return string_member(j, "UserInfo", m.user_info);
    case message_type::chat: return string_member(j, "Text", m.text);
    case message_type::poll_interval: {
      const auto* v = member(j, "IntervalInMilliseconds");
      if (!v) return "PollIntervalMessage without IntervalInMilliseconds";
      if (!v->is_number_integer()) return "IntervalInMilliseconds is not an integer";
      const auto n = v->get<std::int64_t>();
      if (v->is_number_unsigned() && v->get<std::uint64_t>() > static_cast<std::uint64_t>(std::numeric_limits<std::int32_t>::max()))
        return "IntervalInMilliseconds out of range";
      if (n < std::numeric_limits<std::int32_t>::min() || n > std::numeric_limits<std::int32_t>::max())
        return "IntervalInMilliseconds out of range";
      m.interval_ms = static_cast<std::int32_t>(n);
      return {};
    }
    case message_type::poll_mode: {
      const auto* v = member(j, "Mode");
      if (!v) return "PollModeMessage without Mode";
      if (!v->is_string()) return "unknown PollModeOptions value";
      const auto& s = v->get_ref<const std::string&>();
      if (s == "Register") m.mode = poll_mode::register_agent;
      else if (s == "Poll") m.mode = poll_mode::poll;
      else return "unknown PollModeOptions value";
      return {};
    }
    default: return {};
  }
}

nlohmann::json parse(std::string_view body) {
  return nlohmann::json::parse(body.begin(), body.end(), nullptr, /*allow_exceptions=*/false);
}

}  // namespace

std::string encode_request(const message& m) {
  ordered j;
  j["message"] = to_json(m);
  return dump(j);
}

std::string encode_response(std::span<const message> messages) {
  ordered list = ordered::array();
  for (const auto& m : messages) list.push_back(to_json(m));
  ordered j;
  j["PollResult"] = std::move(list);
  return dump(j);
}

decoded<message> decode_request(std::string_view body) {
  const auto j = parse(body);
  if (j.is_discarded()) return decoded<message>::bad("bad JSON");
  if (!j.is_object()) return decoded<message>::bad("body is not an object");
  if (member(j, "error")) return decoded<message>::bad("server fault");
  const auto* m = member(j, "message");
  if (!m) return decoded<message>::bad("Poll without message");
  message out;
  if (const auto why = from_json(*m, out); !why.empty()) return decoded<message>::bad(why);
  return decoded<message>::ok(std::move(out), body.size());
}

decoded<std::vector<message>> decode_response(std::string_view body) {
  using out_t = decoded<std::vector<message>>;
  const auto j = parse(body);
  if (j.is_discarded()) return out_t::bad("bad JSON");
  if (!j.is_object()) return out_t::bad("body is not an object");
  if (member(j, "error")) return out_t::bad("server fault");
  std::vector<message> messages;
  const auto* list = member(j, "PollResult");
  if (list && !list->is_null()) {
    if (!list->is_array()) return out_t::bad("PollResult is not an array");
    for (const auto& item : *list) {
      message m;
      if (const auto why = from_json(item, m); !why.empty()) return out_t::bad(why);
      messages.push_back(std::move(m));
    }
  }
  return out_t::ok(std::move(messages), body.size());
}

std::string encode_fault(std::string_view reason, bool client_fault) {
  ordered j;
  j["error"] = std::string(reason);
  j["code"] = client_fault ? "Client" : "Server";
  return dump(j);
}

std::optional<std::string> decode_fault(std::string_view body) {
  const auto j = parse(body);
  if (j.is_discarded() || !j.is_object()) return std::nullopt;
  const auto* error = member(j, "error");
  if (!error || !error->is_string()) return std::nullopt;
  const auto* code = member(j, "code");
  return (code && code->is_string() ? code->get<std::string>() : std::string("Server")) + ": " + error->get<std::string>();
}

}  // namespace nudge::pollbus::json
