#include "nudge/report/threshold.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <set>

#include "nudge/report/format.hpp"

namespace nudge::report {

std::string threshold_error::what() const {
  std::string out = fmt::format("{}: column {}: {}\n", origin, position + 1, message);
  out += "  " + text + "\n  ";
  out += std::string(std::min(position, text.size()), ' ');
  out += '^';
  if (length > 1) out += std::string(length - 1, '~');
  return out;
}

std::string_view to_string(comparison c) {
  switch (c) {
    case comparison::lt: return "<";
    case comparison::le: return "<=";
    case comparison::gt: return ">";
    case comparison::ge: return ">=";
    case comparison::eq: return "==";
    case comparison::ne: return "!=";
  }
  return "?";
}

namespace {

// ---- units ------------------------------------------------------------------------------------

struct unit_def {
  std::string_view name;
  double factor;
  dimension dim;
};
constexpr unit_def units[] = {
    {"ns", 1e-9, dimension::time},   {"us", 1e-6, dimension::time},   {"\xC2\xB5s", 1e-6, dimension::time},
    {"ms", 1e-3, dimension::time},   {"s", 1, dimension::time},       {"min", 60, dimension::time},
    {"h", 3600, dimension::time},    {"d", 86400, dimension::time},   {"B", 1, dimension::bytes},
    {"KB", 1e3, dimension::bytes},   {"kB", 1e3, dimension::bytes},   {"MB", 1e6, dimension::bytes},
    {"GB", 1e9, dimension::bytes},   {"KiB", 1024, dimension::bytes}, {"MiB", 1048576, dimension::bytes},
    {"GiB", 1073741824, dimension::bytes}, {"%", 0.01, dimension::none},
};
constexpr std::string_view unit_list = "ns, us, ms, s, min, h, d; B, KB, MB, GB, KiB, MiB, GiB; %";

// ---- tokens -----------------------------------------------------------------------------------

enum class tok { number, metric, function, plus, minus, star, slash, lparen, rparen, cmp, end };

struct token {
  tok t = tok::end;
  std::size_t pos = 0, len = 0;
  double number = 0;
  // A literal's dimension: "free" for a plain number (it takes the other side's), else its unit's.
  bool free = true;
  dimension dim = dimension::none;
  metric_ref ref;
  std::string name;  // function name
  comparison cmp = comparison::lt;
};

struct parse_failure {
  std::size_t pos, len;
  std::string message;
};

bool is_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_word(char c) { return is_alpha(c) || is_digit(c); }
bool is_run_char(char c) { return is_word(c) || c == '-' || c == '.' || c == '/' || c == '#'; }

class lexer {
 public:
  explicit lexer(std::string_view text) : s_(text) {}

  std::vector<token> all() {
    std::vector<token> out;
    for (;;) {
      out.push_back(next());
      if (out.back().t == tok::end) return out;
    }
  }

 private:
  [[noreturn]] void fail(std::size_t pos, std::size_t len, std::string message) {
    throw parse_failure{pos, std::max<std::size_t>(len, 1), std::move(message)};
  }

  token next() {
    while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\t')) ++i_;
    token k;
    k.pos = i_;
    if (i_ >= s_.size()) return k;
    const char c = s_[i_];
    auto single = [&](tok t) {
      k.t = t;
      k.len = 1;
      ++i_;
      return k;
    };
    switch (c) {
      case '+': return single(tok::plus);
      case '-': return single(tok::minus);
      case '*': return single(tok::star);
      case '/': return single(tok::slash);
      case '(': return single(tok::lparen);
      case ')': return single(tok::rparen);
      default: break;
    }
    if (c == '<' || c == '>' || c == '=' || c == '!') {
      const bool eq_next = i_ + 1 < s_.size() && s_[i_ + 1] == '=';
      k.t = tok::cmp;
      k.len = eq_next ? 2 : 1;
      if (c == '<') k.cmp = eq_next ? comparison::le : comparison::lt;
      else if (c == '>') k.cmp = eq_next ? comparison::ge : comparison::gt;
      else if (c == '=' && eq_next) k.cmp = comparison::eq;
      else if (c == '!' && eq_next) k.cmp = comparison::ne;
      else if (c == '=') fail(i_, 1, "'=' is not a comparison: write == (or <=, >=)");
      else fail(i_, 1, "'!' is only part of != (not equal)");
      i_ += k.len;
      return k;
    }
    if (is_digit(c) || (c == '.' && i_ + 1 < s_.size() && is_digit(s_[i_ + 1]))) return number(k);
    if (is_alpha(c)) return word(k);
    if (c == '"' || c == '\'') fail(i_, 1, "quotes are not part of a threshold (quote the whole threshold for the shell)");
    fail(i_, 1, fmt::format("unexpected character '{}'", c));
  }

  token number(token k) {
    std::size_t j = i_;
    while (j < s_.size() && is_digit(s_[j])) ++j;
    if (j < s_.size() && s_[j] == '.') {
      ++j;
      while (j < s_.size() && is_digit(s_[j])) ++j;
    }
    if (j < s_.size() && (s_[j] == 'e' || s_[j] == 'E')) {
      std::size_t e = j + 1;
      if (e < s_.size() && (s_[e] == '+' || s_[e] == '-')) ++e;
      if (e < s_.size() && is_digit(s_[e])) {
        j = e;
        while (j < s_.size() && is_digit(s_[j])) ++j;
      }
    }
    double v = 0;
    const auto [ptr, ec] = std::from_chars(s_.data() + i_, s_.data() + j, v);
    if (ec != std::errc{} || ptr != s_.data() + j) fail(i_, j - i_, "not a number");
    // A unit, written right after the number.
    std::size_t u = j;
    while (u < s_.size() && (is_alpha(s_[u]) || s_[u] == '%' || static_cast<unsigned char>(s_[u]) >= 0x80)) ++u;
    k.t = tok::number;
    k.number = v;
    if (u > j) {
      const std::string_view unit = s_.substr(j, u - j);
      const unit_def* found = nullptr;
      for (const auto& d : units)
        if (d.name == unit) found = &d;
      if (!found) fail(j, u - j, fmt::format("unknown unit '{}' ({})", unit, unit_list));
      k.number = v * found->factor;
      k.free = false;
      k.dim = found->dim;
    }
    if (u < s_.size() && (is_digit(s_[u]) || s_[u] == '.')) fail(u, 1, "a unit ends the number");
    k.len = u - i_;
    i_ = u;
    return k;
  }

  token word(token k) {
    const std::size_t start = i_;
    // RUN ":" (a run's name may hold - . / #, which elsewhere are operators)
    std::size_t j = i_;
    while (j < s_.size() && is_run_char(s_[j])) ++j;
    if (j < s_.size() && s_[j] == ':') {
      k.ref.run = std::string(s_.substr(i_, j - i_));
      i_ = j + 1;
      if (i_ >= s_.size() || !is_alpha(s_[i_]))
        fail(i_, 1, fmt::format("expected a mode after '{}:' (poll, push, async, total, run)", k.ref.run));
    }
    const std::size_t mode_pos = i_;
    while (i_ < s_.size() && is_word(s_[i_])) ++i_;
    const std::string word(s_.substr(mode_pos, i_ - mode_pos));
    if (i_ < s_.size() && s_[i_] == '(' && k.ref.run.empty()) {
      if (word != "change" && word != "baseline")
        fail(mode_pos, word.size(), fmt::format("unknown function '{}' (change, baseline)", word));
      k.t = tok::function;
      k.name = word;
      k.len = word.size();
      return k;
    }
    const auto& known_modes = mode_names();
    const bool is_mode = word == "total" || word == "all" || word == "run" ||
                         std::find(known_modes.begin(), known_modes.end(), word) != known_modes.end();
    for (const auto& u : units)
      if (u.name == word && k.ref.run.empty() && (i_ >= s_.size() || (s_[i_] != '.' && s_[i_] != '[')))
        fail(mode_pos, word.size(), fmt::format("a unit goes right after its number, without a space: 2{}", word));
    if (!is_mode) {
      std::string listed;  // the modes of the results read, then the blocks every result has
      for (const auto& m : known_modes) listed += m + ", ";
      listed += "total, run";
      if (i_ >= s_.size() || (s_[i_] != '.' && s_[i_] != '['))
        fail(mode_pos, word.size(),
             fmt::format("'{}' is not a metric: write MODE.METRIC, e.g. total.missed (modes: {})", word, listed));
      fail(mode_pos, word.size(), fmt::format("unknown mode '{}' ({})", word, listed));
    }
    k.ref.mode = word == "all" ? "total" : word;
    if (i_ < s_.size() && s_[i_] == '[') {
      const std::size_t open = i_;
      const auto close = s_.find(']', open);
      if (close == std::string_view::npos) fail(open, 1, "unclosed '[' (a NAT group is written push[symmetric])");
      std::string_view nat = s_.substr(open + 1, close - open - 1);
      while (!nat.empty() && nat.front() == ' ') nat.remove_prefix(1);
      while (!nat.empty() && nat.back() == ' ') nat.remove_suffix(1);
      if (nat.empty()) fail(open, close - open + 1, "empty NAT group (e.g. push[symmetric], push[none])");
      if (k.ref.mode == "total" || k.ref.mode == "run")
        fail(open, close - open + 1, "NAT groups belong to a mode, e.g. push[symmetric]");
      k.ref.nat = std::string(nat);
      i_ = close + 1;
    }
    if (i_ >= s_.size() || s_[i_] != '.')
      fail(i_ < s_.size() ? i_ : s_.size(), 1, fmt::format("expected '.' and a metric name after '{}'", word));
    ++i_;
    const std::size_t metric_pos = i_;
    while (i_ < s_.size() && (is_word(s_[i_]) || s_[i_] == '.')) ++i_;
    std::string name(s_.substr(metric_pos, i_ - metric_pos));
    if (name.empty()) fail(metric_pos, 1, "expected a metric name (docs/report.md lists them)");
    const bool run_metric = k.ref.mode == "run";
    k.ref.metric = run_metric ? find_run_metric(name) : find_mode_metric(name);
    if (!k.ref.metric) {
      const std::string near = closest_metric(name, run_metric);
      fail(metric_pos, name.size(),
           fmt::format("unknown {}metric '{}' ({})", run_metric ? "run " : "", name,
                       near.empty() ? "docs/report.md lists them" : fmt::format("did you mean '{}'?", near)));
    }
    k.t = tok::metric;
    k.len = i_ - start;
    k.ref.position = start;
    k.ref.length = k.len;
    k.ref.text = std::string(s_.substr(start, k.len));
    return k;
  }

  std::string_view s_;
  std::size_t i_ = 0;
};

// ---- parser -----------------------------------------------------------------------------------

// A dimension as inferred: plain numbers are "free" (they take the other side's).
struct dim_t {
  enum class v { free, none, time, bytes, mixed } d = v::free;
};
using dv = dim_t::v;

dv of(dimension d) {
  switch (d) {
    case dimension::none: return dv::none;
    case dimension::time: return dv::time;
    case dimension::bytes: return dv::bytes;
  }
  return dv::mixed;
}

std::string_view dim_name(dv d) {
  switch (d) {
    case dv::free: return "a plain number";
    case dv::none: return "a count";
    case dv::time: return "a time";
    case dv::bytes: return "bytes";
    case dv::mixed: return "a mixed quantity";
  }
  return "?";
}

struct typed {
  std::shared_ptr<const expr> e;
  dv dim = dv::free;
};

class parser {
 public:
  explicit parser(std::vector<token> toks) : t_(std::move(toks)) {}

  threshold parse() {
    if (peek().t == tok::end) fail(peek().pos, 1, "empty threshold (e.g. push.missed == 0)");
    const typed lhs = sum();
    if (peek().t != tok::cmp) {
      if (peek().t == tok::end) fail(peek().pos, 1, "expected a comparison (<, <=, >, >=, ==, !=)");
      if (peek().t == tok::rparen) fail(peek().pos, 1, "unexpected ')'");
      fail(peek().pos, peek().len, "expected an operator (+ - * /) or a comparison (< <= > >= == !=)");
    }
    const token op = take();
    const typed rhs = sum();
    if (peek().t == tok::cmp) fail(peek().pos, peek().len, "one comparison per threshold (write two thresholds)");
    if (peek().t == tok::rparen) fail(peek().pos, 1, "unexpected ')'");
    if (peek().t != tok::end) fail(peek().pos, peek().len, "expected an operator (+ - * /) or the end");
    check_same(lhs.dim, rhs.dim, op, "compare");
    threshold t;
    t.lhs = lhs.e;
    t.rhs = rhs.e;
    t.op = op.cmp;
    t.op_position = op.pos;
    return t;
  }

 private:
  [[noreturn]] void fail(std::size_t pos, std::size_t len, std::string message) {
    throw parse_failure{pos, std::max<std::size_t>(len, 1), std::move(message)};
  }
  const token& peek() const { return t_[i_]; }
  token take() { return t_[i_++]; }

  void check_same(dv a, dv b, const token& op, std::string_view verb) {
    const auto concrete = [](dv d) { return d == dv::none || d == dv::time || d == dv::bytes; };
    if (concrete(a) && concrete(b) && a != b)
      fail(op.pos, op.len, fmt::format("cannot {} {} with {}", verb, dim_name(a), dim_name(b)));
  }

  static std::shared_ptr<const expr> node(expr::kind k, const token& at, std::shared_ptr<const expr> a,
                                          std::shared_ptr<const expr> b = nullptr) {
    auto e = std::make_shared<expr>();
    e->k = k;
    e->a = std::move(a);
    e->b = std::move(b);
    e->position = at.pos;
    e->length = at.len;
    return e;
  }

  typed sum() {
    typed left = product();
    while (peek().t == tok::plus || peek().t == tok::minus) {
      const token op = take();
      const typed right = product();
      check_same(left.dim, right.dim, op, op.t == tok::plus ? "add" : "subtract");
      const dv d = left.dim == dv::free ? right.dim : left.dim;
      left = {node(op.t == tok::plus ? expr::kind::add : expr::kind::subtract, op, left.e, right.e), d};
    }
    return left;
  }

  typed product() {
    typed left = unary();
    while (peek().t == tok::star || peek().t == tok::slash) {
      const token op = take();
      const typed right = unary();
      dv d;
      const auto scalar = [](dv x) { return x == dv::free || x == dv::none; };
      if (op.t == tok::star) {
        if (left.dim == dv::free) d = right.dim;
        else if (right.dim == dv::free || right.dim == dv::none) d = left.dim;
        else if (left.dim == dv::none) d = right.dim;
        else d = dv::mixed;
      } else {
        if (scalar(right.dim)) d = left.dim == dv::free && right.dim == dv::none ? dv::none : left.dim;
        else if (left.dim == right.dim) d = dv::none;
        else d = dv::mixed;
      }
      left = {node(op.t == tok::star ? expr::kind::multiply : expr::kind::divide, op, left.e, right.e), d};
    }
    return left;
  }

  typed unary() {
    if (peek().t == tok::plus) {
      take();
      return unary();
    }
    if (peek().t == tok::minus) {
      const token op = take();
      const typed inner = unary();
      return {node(expr::kind::negate, op, inner.e), inner.dim};
    }
    return primary();
  }

  typed primary() {
    const token k = take();
    switch (k.t) {
      case tok::number: {
        auto e = std::make_shared<expr>();
        e->k = expr::kind::number;
        e->number = k.number;
        e->position = k.pos;
        e->length = k.len;
        return {e, k.free ? dv::free : of(k.dim)};
      }
      case tok::metric: {
        auto e = std::make_shared<expr>();
        e->k = expr::kind::metric;
        e->ref = k.ref;
        e->position = k.pos;
        e->length = k.len;
        return {e, of(k.ref.metric->dim)};
      }
      case tok::function: {
        if (in_function_) fail(k.pos, k.len, fmt::format("{}() cannot be used inside change() or baseline()", k.name));
        const token open = take();
        if (open.t != tok::lparen) fail(open.pos, open.len, "expected '('");
        in_function_ = true;
        const typed inner = sum();
        in_function_ = false;
        if (peek().t != tok::rparen) fail(peek().pos, peek().len, fmt::format("expected ')' to close {}(", k.name));
        take();
        const bool change = k.name == "change";
        return {node(change ? expr::kind::change : expr::kind::baseline, k, inner.e), change ? dv::none : inner.dim};
      }
      case tok::lparen: {
        const typed inner = sum();
        if (peek().t != tok::rparen) fail(peek().pos, peek().len, "expected ')'");
        take();
        return inner;
      }
      case tok::end: fail(k.pos, 1, "expected a number, a metric or '(' here");
      case tok::rparen: fail(k.pos, 1, "unexpected ')': expected a number, a metric or '('");
      case tok::cmp: fail(k.pos, k.len, "expected a number, a metric or '(' before the comparison");
      default: fail(k.pos, k.len, "expected a number, a metric or '('");
    }
  }

  std::vector<token> t_;
  std::size_t i_ = 0;
  bool in_function_ = false;
};

void collect_refs(const expr* e, std::vector<metric_ref>& out) {
  if (!e) return;
  if (e->k == expr::kind::metric) out.push_back(e->ref);
  collect_refs(e->a.get(), out);
  collect_refs(e->b.get(), out);
}

bool uses_baseline(const expr* e) {
  if (!e) return false;
  if (e->k == expr::kind::change || e->k == expr::kind::baseline) return true;
  return uses_baseline(e->a.get()) || uses_baseline(e->b.get());
}

}  // namespace

std::vector<metric_ref> threshold::refs() const {
  std::vector<metric_ref> out;
  collect_refs(lhs.get(), out);
  collect_refs(rhs.get(), out);
  std::sort(out.begin(), out.end(), [](const metric_ref& a, const metric_ref& b) { return a.position < b.position; });
  return out;
}

bool threshold::needs_baseline() const { return uses_baseline(lhs.get()) || uses_baseline(rhs.get()); }

parse_result parse_threshold(std::string_view text, std::string origin) {
  try {
    lexer lx(text);
    parser p(lx.all());
    threshold t = p.parse();
    t.text = std::string(text);
    t.origin = std::move(origin);
    return t;
  } catch (const parse_failure& f) {
    return threshold_error{std::move(origin), std::string(text), f.pos, f.len, f.message};
  }
}

std::variant<std::vector<threshold>, threshold_error> parse_threshold_lines(std::string_view content,
                                                                           const std::string& file_name) {
  std::vector<threshold> out;
  std::size_t line_no = 0;
  while (!content.empty()) {
    const auto nl = content.find('\n');
    std::string_view line = content.substr(0, nl);
    content = nl == std::string_view::npos ? std::string_view{} : content.substr(nl + 1);
    ++line_no;
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ' || line.back() == '\t')) line.remove_suffix(1);
    std::size_t lead = 0;
    while (lead < line.size() && (line[lead] == ' ' || line[lead] == '\t')) ++lead;
    if (lead == line.size() || line[lead] == '#') continue;
    auto r = parse_threshold(line.substr(lead), fmt::format("{}:{}", file_name, line_no));
    if (auto* e = std::get_if<threshold_error>(&r)) return *e;
    out.push_back(std::get<threshold>(std::move(r)));
  }
  return out;
}

std::optional<threshold_error> check_against(const threshold& t, const input_set& now, const input_set* baseline) {
  for (const auto& r : t.refs()) {
    if (r.run.empty()) continue;
    if (!now.find(r.run)) {
      std::string names;
      for (const auto& n : now.names()) names += (names.empty() ? "" : ", ") + n;
      return threshold_error{t.origin, t.text, r.position, r.run.size(),
                             fmt::format("no input run is named '{}' (runs: {})", r.run, names)};
    }
  }
  if (t.needs_baseline() && (!baseline || baseline->runs.empty())) {
    std::size_t pos = t.text.find("change(");
    if (pos == std::string::npos) pos = t.text.find("baseline(");
    return threshold_error{t.origin, t.text, pos == std::string::npos ? 0 : pos, 6,
                           "change() and baseline() compare with a baseline: give --baseline OLD"};
  }
  return std::nullopt;
}

// ---- evaluation ---------------------------------------------------------------------------------

namespace {

struct no_data {
  std::string message;
};

struct eval_context {
  const input_set& now;
  const input_set* baseline;
  const run* current;  // unqualified metrics
  std::vector<std::pair<std::string, std::optional<double>>>& values;
};

const run* resolve_run(const metric_ref& r, const eval_context& c, bool old) {
  const run* target = r.run.empty() ? c.current : c.now.find(r.run);
  if (!target) throw no_data{fmt::format("{}: no run to read it from", r.text)};
  if (!old) return target;
  const run* b = baseline_for(*target, c.now, *c.baseline);
  if (!b) throw no_data{fmt::format("the baseline has no run named '{}' (for {})", target->name, r.text)};
  return b;
}

// The block a reference reads, or why there is none.
const nlohmann::json* block_of(const metric_ref& r, const run& in, std::string& why) {
  if (r.mode == "run") return &in.result;
  if (r.nat) {
    const auto* g = in.group(r.mode, *r.nat);
    if (!g) why = fmt::format("{} has no {}[{}] group", in.name, r.mode, *r.nat);
    return g;
  }
  const auto* m = in.mode(r.mode);
  if (!m) why = fmt::format("{} has no {} clients", in.name, r.mode);
  return m;
}

double read(const metric_ref& r, const eval_context& c, bool old) {
  const run* in = resolve_run(r, c, old);
  std::string why;
  const auto* block = block_of(r, *in, why);
  const std::string label = old ? "baseline " + r.text : r.text;
  if (!block) {
    c.values.emplace_back(label, std::nullopt);
    throw no_data{old ? "baseline: " + why : why};
  }
  const auto v = lookup(*block, *r.metric);
  c.values.emplace_back(label, v);
  if (!v) throw no_data{fmt::format("{}{}: no data in {}", old ? "baseline " : "", r.text, in->name)};
  return *v;
}

double eval(const expr& e, const eval_context& c, bool old) {
  switch (e.k) {
    case expr::kind::number: return e.number;
    case expr::kind::metric: return read(e.ref, c, old);
    case expr::kind::negate: return -eval(*e.a, c, old);
    case expr::kind::add: return eval(*e.a, c, old) + eval(*e.b, c, old);
    case expr::kind::subtract: return eval(*e.a, c, old) - eval(*e.b, c, old);
    case expr::kind::multiply: return eval(*e.a, c, old) * eval(*e.b, c, old);
    case expr::kind::divide: return eval(*e.a, c, old) / eval(*e.b, c, old);
    case expr::kind::baseline: return eval(*e.a, c, true);
    case expr::kind::change: {
      const double was = eval(*e.a, c, true), is = eval(*e.a, c, false);
      if (was == is) return 0.0;
      // From 0 to something is an infinite change; the sign says which way.
      return (is - was) / std::abs(was);
    }
  }
  return std::nan("");
}

bool compare(double a, comparison op, double b) {
  switch (op) {
    case comparison::lt: return a < b;
    case comparison::le: return a <= b;
    case comparison::gt: return a > b;
    case comparison::ge: return a >= b;
    case comparison::eq: return a == b;
    case comparison::ne: return a != b;
  }
  return false;
}

// The dimension of a side, for the message ("2828.21 B").
dimension side_dim(const expr& e) {
  switch (e.k) {
    case expr::kind::metric: return e.ref.metric->dim;
    case expr::kind::change: return dimension::none;
    case expr::kind::number: return dimension::none;
    case expr::kind::negate:
    case expr::kind::baseline: return side_dim(*e.a);
    case expr::kind::add:
    case expr::kind::subtract: {
      const auto a = side_dim(*e.a);
      return a != dimension::none ? a : side_dim(*e.b);
    }
    case expr::kind::multiply: {
      const auto a = side_dim(*e.a), b = side_dim(*e.b);
      if (a == dimension::none) return b;
      if (b == dimension::none) return a;
      return dimension::none;
    }
    case expr::kind::divide: {
      const auto a = side_dim(*e.a), b = side_dim(*e.b);
      return b == dimension::none ? a : dimension::none;
    }
  }
  return dimension::none;
}

bool is_change(const expr& e) { return e.k == expr::kind::change; }

bool has_metric(const expr& e) {
  if (e.k == expr::kind::metric) return true;
  return (e.a && has_metric(*e.a)) || (e.b && has_metric(*e.b));
}

// A side as the message shows it: in the other side's unit when it is a constant ("2min + 1s" is 121 s).
std::string show(double v, const expr& side, const expr& other) {
  if (is_change(side) || (!has_metric(side) && is_change(other))) return format_change(v);
  dimension d = side_dim(side);
  if (d == dimension::none && !has_metric(side)) d = side_dim(other);
  return format_quantity(v, d);
}

evaluation evaluate_on(const threshold& t, const input_set& now, const input_set* baseline, const run* current) {
  evaluation ev;
  ev.threshold = t.text;
  ev.origin = t.origin;
  ev.run = current ? current->name : "";
  eval_context c{now, baseline, current, ev.values};
  try {
    const double l = eval(*t.lhs, c, false);
    const double r = eval(*t.rhs, c, false);
    ev.lhs = l;
    ev.rhs = r;
    if (std::isnan(l) || std::isnan(r)) {
      ev.passed = false;
      ev.message = fmt::format("{} {} {}: not a number (0/0?), fails", show(l, *t.lhs, *t.rhs), to_string(t.op),
                               show(r, *t.rhs, *t.lhs));
    } else {
      ev.passed = compare(l, t.op, r);
      ev.message = fmt::format("{} {} {} is {}", show(l, *t.lhs, *t.rhs), to_string(t.op), show(r, *t.rhs, *t.lhs),
                               ev.passed ? "true" : "false");
    }
  } catch (const no_data& e) {
    ev.passed = false;
    ev.message = "no data: " + e.message;
  }
  return ev;
}

}  // namespace

std::vector<evaluation> evaluate(const threshold& t, const input_set& now, const input_set* baseline) {
  const auto refs = t.refs();
  bool unqualified = false;
  for (const auto& r : refs) unqualified = unqualified || r.run.empty();
  std::vector<evaluation> out;
  if (!t.scope_run.empty()) {
    const run* r = now.find(t.scope_run);
    if (r) out.push_back(evaluate_on(t, now, baseline, r));
    return out;
  }
  if (!unqualified) {
    out.push_back(evaluate_on(t, now, baseline, nullptr));
    return out;
  }
  std::vector<std::string> why_not;
  for (const auto& r : now.runs) {
    std::string why;
    bool applies = true;
    for (const auto& ref : refs) {
      if (!ref.run.empty()) continue;
      if (!block_of(ref, r, why)) {
        applies = false;
        break;
      }
    }
    if (applies) out.push_back(evaluate_on(t, now, baseline, &r));
    else why_not.push_back(why);
  }
  if (out.empty()) {
    evaluation ev;
    ev.threshold = t.text;
    ev.origin = t.origin;
    ev.passed = false;
    std::string reasons;
    for (const auto& w : why_not) reasons += (reasons.empty() ? "" : "; ") + w;
    ev.message = "applies to no input: " + reasons;
    out.push_back(std::move(ev));
  }
  return out;
}

}  // namespace nudge::report
