// SOAP 1.1 document/literal bodies as .NET's XmlSerializer writes them.
// Written as text (exact bytes), read with pugixml; pugixml is not namespace
// aware, so element and attribute prefixes are resolved here against the
// xmlns declarations in scope.
#include <charconv>
#include <pugixml.hpp>
#include <string>

#include "nudge/pollbus/codec.hpp"
#include "encodings.hpp"

namespace nudge::pollbus {

namespace {

using namespace soap_names;

void escape_to(std::string& out, std::string_view text) {
  for (const char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '\r': out += "&#xD;"; break;  // as XmlSerializer: a bare CR would be normalised away
      default:
        if (static_cast<unsigned char>(c) < 0x20 && c != '\n' && c != '\t') {
          static constexpr char hex[] = "0123456789ABCDEF";
          out += "&#x";
          if (c >= 0x10) out.push_back('1');
          out.push_back(hex[c & 0xf]);
          out.push_back(';');
        } else {
          out.push_back(c);
        }
    }
  }
}

void element(std::string& out, std::string_view name, std::string_view text) {
  out += '<';
  out += name;
  if (text.empty()) {
    out += " />";  // XmlSerializer's form of an empty string
    return;
  }
  out += '>';
  escape_to(out, text);
  out += "</";
  out += name;
  out += '>';
}

void fields_to(std::string& out, const message& m) {
  element(out, "AgentId", guid_text(m.agent_id));
  element(out, "TimeStamp", timestamp_text(m.timestamp_ms));
  switch (m.type) {
    case message_type::register_agent:
      element(out, "ComputerName", m.computer_name);
      element(out, "UserInfo", m.user_info);
      break;
    case message_type::poll_interval: element(out, "IntervalInMilliseconds", std::to_string(m.interval_ms)); break;
    case message_type::poll_mode: element(out, "Mode", m.mode == poll_mode::register_agent ? "Register" : "Poll"); break;
    case message_type::chat: element(out, "Text", m.text); break;
    default: break;
  }
}

void message_to(std::string& out, std::string_view element_name, const message& m) {
  out += '<';
  out += element_name;
  out += " xsi:type=\"";
  out += wire_name(m.type);
  out += "\">";
  fields_to(out, m);
  out += "</";
  out += element_name;
  out += '>';
}

// ---- reading ---------------------------------------------------------------

std::string_view local_name(std::string_view qname) {
  const auto colon = qname.find(':');
  return colon == std::string_view::npos ? qname : qname.substr(colon + 1);
}

// The namespace URI a prefix ("" for the default namespace) has at `node`.
std::string_view namespace_of(pugi::xml_node node, std::string_view prefix) {
  const std::string attribute = prefix.empty() ? std::string("xmlns") : "xmlns:" + std::string(prefix);
  for (; node; node = node.parent())
    if (node.type() == pugi::node_element)
      if (auto a = node.attribute(attribute.c_str())) return a.value();
  if (prefix == "xml") return "http://www.w3.org/XML/1998/namespace";
  return {};
}

bool is(pugi::xml_node node, std::string_view ns, std::string_view local) {
  if (node.type() != pugi::node_element) return false;
  const std::string_view qname = node.name();
  const auto colon = qname.find(':');
  const std::string_view prefix = colon == std::string_view::npos ? std::string_view() : qname.substr(0, colon);
  return local_name(qname) == local && namespace_of(node, prefix) == ns;
}

pugi::xml_node child(pugi::xml_node parent, std::string_view ns, std::string_view local) {
  for (auto c : parent.children())
    if (is(c, ns, local)) return c;
  return {};
}

// The first element child (skipping comments and processing instructions).
pugi::xml_node first_element(pugi::xml_node parent) {
  for (auto c : parent.children())
    if (c.type() == pugi::node_element) return c;
  return {};
}

std::optional<std::string_view> xsi_type(pugi::xml_node node) {
  for (auto a : node.attributes()) {
    const std::string_view qname = a.name();
    const auto colon = qname.find(':');
    if (colon == std::string_view::npos || qname.substr(colon + 1) != "type") continue;
    if (namespace_of(node, qname.substr(0, colon)) == xsi_ns) return local_name(a.value());
  }
  return std::nullopt;
}

struct body_result {
  pugi::xml_node body;
  std::string_view error;
};

body_result soap_body(const pugi::xml_document& doc) {
  const auto envelope = doc.document_element();
  if (!is(envelope, soap_env_ns, "Envelope")) return {{}, "not a SOAP 1.1 Envelope"};
  const auto body = child(envelope, soap_env_ns, "Body");
  if (!body) return {{}, "SOAP Envelope without Body"};
  if (child(body, soap_env_ns, "Fault")) return {{}, "SOAP fault"};
  return {body, {}};
}

std::string_view text_of(pugi::xml_node n) { return n.text().get(); }

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\n' || s.front() == '\r')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\n' || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

// Reads one BaseMessage element; returns a static reason on failure.
std::string_view read_message(pugi::xml_node node, message& m) {
  const auto type_name = xsi_type(node);
  if (!type_name) return "message without xsi:type";
  const auto type = message_type_from_wire(*type_name);
  if (!type) return "unknown xsi:type";
  m.type = *type;
  const auto agent = child(node, tempuri_ns, "AgentId");
  if (!agent) return "message without AgentId";
  const auto id = parse_guid(trim(text_of(agent)));
  if (!id) return "AgentId is not a GUID";
  m.agent_id = *id;
  const auto stamp = child(node, tempuri_ns, "TimeStamp");
  if (!stamp) return "message without TimeStamp";
  const auto ms = parse_timestamp(trim(text_of(stamp)));
  if (!ms) return "TimeStamp is not an xs:dateTime";
  m.timestamp_ms = *ms;
  // Strings are reference types: XmlSerializer omits a null one, so absent reads as empty.
  switch (m.type) {
    case message_type::register_agent:
      m.computer_name = text_of(child(node, tempuri_ns, "ComputerName"));
      m.user_info = text_of(child(node, tempuri_ns, "UserInfo"));
      break;
    case message_type::chat: m.text = text_of(child(node, tempuri_ns, "Text")); break;
    case message_type::poll_interval: {
      const auto n = child(node, tempuri_ns, "IntervalInMilliseconds");
      if (!n) return "PollIntervalMessage without IntervalInMilliseconds";
      std::string_view t = trim(text_of(n));
      if (!t.empty() && t.front() == '+') t.remove_prefix(1);
      std::int32_t v = 0;
      const auto [end, ec] = std::from_chars(t.data(), t.data() + t.size(), v);
      if (t.empty() || ec != std::errc() || end != t.data() + t.size()) return "IntervalInMilliseconds is not an xs:int";
      m.interval_ms = v;
      break;
    }
    case message_type::poll_mode: {
      const auto n = child(node, tempuri_ns, "Mode");
      if (!n) return "PollModeMessage without Mode";
      const std::string_view t = trim(text_of(n));
      if (t == "Register") m.mode = poll_mode::register_agent;
      else if (t == "Poll") m.mode = poll_mode::poll;
      else return "unknown PollModeOptions value";
      break;
    }
    default: break;
  }
  return {};
}

bool load(pugi::xml_document& doc, std::string_view body) {
  // No DOCTYPE expansion exists in pugixml (no entity bombs); comments and PIs are skipped.
  return doc.load_buffer(body.data(), body.size(), pugi::parse_default, pugi::encoding_utf8).status == pugi::status_ok;
}

}  // namespace

namespace soap {

std::string encode_request(const message& m) {
  std::string out;
  out.reserve(512);
  out += envelope_open;
  out += "<Poll xmlns=\"http://tempuri.org/\">";
  message_to(out, "message", m);
  out += "</Poll>";
  out += envelope_close;
  return out;
}

std::string encode_response(std::span<const message> messages) {
  std::string out;
  out.reserve(320 + 256 * messages.size());
  out += envelope_open;
  out += "<PollResponse xmlns=\"http://tempuri.org/\"><PollResult>";
  for (const auto& m : messages) message_to(out, "BaseMessage", m);
  out += "</PollResult></PollResponse>";
  out += envelope_close;
  return out;
}

decoded<message> decode_request(std::string_view body) {
  pugi::xml_document doc;
  if (!load(doc, body)) return decoded<message>::bad("bad XML");
  const auto [b, error] = soap_body(doc);
  if (!error.empty()) return decoded<message>::bad(error);
  const auto poll = first_element(b);
  if (!is(poll, tempuri_ns, "Poll")) return decoded<message>::bad("SOAP Body does not hold Poll");
  const auto node = child(poll, tempuri_ns, "message");
  if (!node) return decoded<message>::bad("Poll without message");
  message m;
  if (const auto why = read_message(node, m); !why.empty()) return decoded<message>::bad(why);
  return decoded<message>::ok(std::move(m), body.size());
}

decoded<std::vector<message>> decode_response(std::string_view body) {
  using out_t = decoded<std::vector<message>>;
  pugi::xml_document doc;
  if (!load(doc, body)) return out_t::bad("bad XML");
  const auto [b, error] = soap_body(doc);
  if (!error.empty()) return out_t::bad(error);
  const auto response = first_element(b);
  if (!is(response, tempuri_ns, "PollResponse")) return out_t::bad("SOAP Body does not hold PollResponse");
  std::vector<message> messages;
  // A null list is written as no PollResult at all: no messages.
  if (const auto result = child(response, tempuri_ns, "PollResult")) {
    for (auto node : result.children()) {
      if (node.type() != pugi::node_element) continue;
      if (!is(node, tempuri_ns, "BaseMessage")) return out_t::bad("PollResult holds an element other than BaseMessage");
      message m;
      if (const auto why = read_message(node, m); !why.empty()) return out_t::bad(why);
      messages.push_back(std::move(m));
    }
  }
  return out_t::ok(std::move(messages), body.size());
}

std::string encode_fault(std::string_view reason, bool client_fault) {
  std::string out = std::string(envelope_open);
  out += "<soap:Fault><faultcode>";
  out += client_fault ? "soap:Client" : "soap:Server";
  out += "</faultcode><faultstring>";
  escape_to(out, reason);
  out += "</faultstring><detail /></soap:Fault>";
  out += envelope_close;
  return out;
}

std::optional<std::string> decode_fault(std::string_view body) {
  pugi::xml_document doc;
  if (!load(doc, body)) return std::nullopt;
  const auto envelope = doc.document_element();
  if (!is(envelope, soap_env_ns, "Envelope")) return std::nullopt;
  const auto fault = child(child(envelope, soap_env_ns, "Body"), soap_env_ns, "Fault");
  if (!fault) return std::nullopt;
  // faultcode and faultstring are unqualified in SOAP 1.1.
  std::string out = fault.child("faultcode").text().get();
  out += ": ";
  out += fault.child("faultstring").text().get();
  return out;
}

}  // namespace soap

}  // namespace nudge::pollbus
