#pragma once
// Every decoder in nudge returns one of three outcomes: complete (with the
// value and how many bytes it used), need-more (a stream framer should wait
// for more bytes) or malformed (with a static reason string; never throws).
#include <cstddef>
#include <string_view>

namespace nudge::protocol {

enum class decode_status { complete, need_more, malformed };

template <class T>
struct decoded {
  decode_status status = decode_status::malformed;
  T value{};
  std::size_t consumed = 0;
  std::string_view reason;  // static text; set when malformed (and when need_more, for diagnostics)

  bool complete() const { return status == decode_status::complete; }
  bool need_more() const { return status == decode_status::need_more; }
  bool malformed() const { return status == decode_status::malformed; }

  static decoded ok(T v, std::size_t used) { return {decode_status::complete, std::move(v), used, {}}; }
  static decoded more(std::string_view why = "need more bytes") { return {decode_status::need_more, T{}, 0, why}; }
  static decoded bad(std::string_view why) { return {decode_status::malformed, T{}, 0, why}; }
};

}  // namespace nudge::protocol
