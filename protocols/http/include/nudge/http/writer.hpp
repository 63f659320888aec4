#pragma once
// Serialisers: a request or response becomes exactly its start line, its
// header fields in the order they are stored, a blank line and the body.
// Nothing is added or reordered, so byte counts are predictable; builders
// (with_content_length) add the framing fields explicitly.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "nudge/http/message.hpp"
#include "nudge/protocol/byte_io.hpp"

namespace nudge::http {

using protocol::byte_buffer;

/// Start line, fields and the blank line (what .NET sends before waiting for 100 Continue).
byte_buffer serialize_head(const request& r);
byte_buffer serialize_head(const response& r);
/// The head and the body.
byte_buffer serialize(const request& r);
byte_buffer serialize(const response& r);
/// Appends to `out` instead.
void serialize_to(byte_buffer& out, const request& r);
void serialize_to(byte_buffer& out, const response& r);

/// Sets Content-Length to the body's size (in place if present, else appended).
void set_content_length(request& r);
void set_content_length(response& r);

/// "HTTP/1.1 100 Continue\r\n\r\n".
std::string_view continue_line();

/// A small response with a text body, for refusals: status, reason phrase,
/// Content-Type: text/plain, Content-Length and Connection: close.
response plain_response(int status, std::string_view text);

/// RFC 9110 IMF-fixdate ("Wed, 26 Aug 2009 10:00:00 GMT", always 29 bytes)
/// for seconds since 1970-01-01 UTC; for a Date header supplied by a caller.
std::string imf_fixdate(std::int64_t unix_seconds);

}  // namespace nudge::http
