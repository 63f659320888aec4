#include "nudge/protocol/identifiers.hpp"

#include <cstdio>

namespace nudge::protocol {

namespace {
int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}
}  // namespace

guid guid::parse(const char* text) {
  // Text order is big-endian per field; NDR sends the first three fields little-endian.
  std::uint8_t raw[16] = {};
  int n = 0;
  for (const char* p = text; *p && n < 32; ++p) {
    int v = hex_value(*p);
    if (v < 0) continue;
    raw[n / 2] = static_cast<std::uint8_t>(raw[n / 2] | (v << ((n % 2) ? 0 : 4)));
    ++n;
  }
  guid g;
  const int order[16] = {3, 2, 1, 0, 5, 4, 7, 6, 8, 9, 10, 11, 12, 13, 14, 15};
  for (int i = 0; i < 16; ++i) g.bytes[i] = raw[order[i]];
  return g;
}

std::string guid::to_string() const {
  const int order[16] = {3, 2, 1, 0, 5, 4, 7, 6, 8, 9, 10, 11, 12, 13, 14, 15};
  std::string s;
  char buf[3];
  for (int i = 0; i < 16; ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) s += '-';
    std::snprintf(buf, sizeof buf, "%02x", bytes[order[i]]);
    s += buf;
  }
  return s;
}

syntax_id emsmdb_syntax() {
  static const syntax_id s{guid::parse("a4f1db00-ca47-1067-b31f-00dd010662da"), 0, 81};
  return s;
}
syntax_id async_emsmdb_syntax() {
  static const syntax_id s{guid::parse("5261574a-4572-206e-b268-6b199213b4e4"), 0, 1};
  return s;
}
syntax_id ndr_syntax() {
  static const syntax_id s{guid::parse("8a885d04-1ceb-11c9-9fe8-08002b104860"), 2, 0};
  return s;
}

}  // namespace nudge::protocol
