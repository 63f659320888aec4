#pragma once
// nudge's one error idiom for fallible functions: a result<T> holds the value
// or an error with a message for a person (C++20 has no std::expected).
// Exceptions are left to program edges: a main() may turn an error into an
// exit status, nothing below it throws for an expected failure.
//
//   result<options> parse_options(int argc, char** argv);
//   if (auto o = parse_options(argc, argv); !o) return usage_error(o.error().message);
#include <string>
#include <utility>
#include <variant>

namespace nudge {

struct failure {
  std::string message;
  int exit_code = 1;  // what a main() that reports this error should return
};

/// An error to return from a function returning any result<T>.
inline failure fail(std::string message, int exit_code = 1) { return failure{std::move(message), exit_code}; }

template <class T>
class [[nodiscard]] result {
 public:
  result(T value) : v_(std::in_place_index<0>, std::move(value)) {}  // NOLINT: implicit on purpose
  result(failure e) : v_(std::in_place_index<1>, std::move(e)) {}      // NOLINT

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }

  /// The value; only when ok().
  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

  /// The error; only when !ok().
  const failure& error() const { return std::get<1>(v_); }

 private:
  std::variant<T, failure> v_;
};

/// A fallible function with no value to return.
template <>
class [[nodiscard]] result<void> {
 public:
  result() = default;
  result(failure e) : e_(std::move(e)), ok_(false) {}  // NOLINT: implicit on purpose
  bool ok() const { return ok_; }
  explicit operator bool() const { return ok_; }
  const failure& error() const { return e_; }

 private:
  failure e_;
  bool ok_ = true;
};

}  // namespace nudge
