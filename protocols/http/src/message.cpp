#include "nudge/http/message.hpp"

#include <algorithm>
#include <cctype>

namespace nudge::http {

namespace {
char lower(char c) { return static_cast<char>(std::tolower(static_cast<unsigned char>(c))); }
std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}
}  // namespace

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) { return lower(x) == lower(y); });
}

bool has_token(std::string_view list_value, std::string_view token) {
  while (!list_value.empty()) {
    const auto comma = list_value.find(',');
    if (iequals(trim(list_value.substr(0, comma)), token)) return true;
    if (comma == std::string_view::npos) break;
    list_value.remove_prefix(comma + 1);
  }
  return false;
}

std::optional<std::string_view> fields::find(std::string_view name) const {
  for (const auto& f : list)
    if (iequals(f.name, name)) return std::string_view(f.value);
  return std::nullopt;
}

void fields::set(std::string_view name, std::string value) {
  for (auto& f : list)
    if (iequals(f.name, name)) {
      f.value = std::move(value);
      return;
    }
  list.push_back({std::string(name), std::move(value)});
}

void fields::erase(std::string_view name) {
  std::erase_if(list, [&](const field& f) { return iequals(f.name, name); });
}

bool keeps_alive(int version, const fields& headers) {
  const auto connection = headers.find("Connection");
  if (version >= http_1_1) return !(connection && has_token(*connection, "close"));
  return connection && has_token(*connection, "keep-alive");
}

std::string_view reason_phrase(int status) {
  switch (status) {
    case 100: return "Continue";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 304: return "Not Modified";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 411: return "Length Required";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 415: return "Unsupported Media Type";
    case 417: return "Expectation Failed";
    case 431: return "Request Header Fields Too Large";
    case 449: return "Retry With";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 505: return "HTTP Version Not Supported";
    default: return "Unknown";
  }
}

}  // namespace nudge::http
