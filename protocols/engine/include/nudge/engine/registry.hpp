#pragma once
// The protocol registry: each protocol family (protocols/<family>/) declares
// once what the rest of nudge needs to know about it, and registers it with one
// call (protocols/registrations.cpp). Drivers, the counters, the result
// writer, the report and the capture analyser read names and factories from
// here or from a result's `vocabulary` block; none of them lists a mode or a
// message kind (docs/architecture.md).
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "nudge/engine/capture_classifier.hpp"
#include "nudge/engine/session.hpp"
#include "nudge/metrics/client_metrics.hpp"
#include "nudge/metrics/traffic.hpp"
#include "nudge/protocol/clock.hpp"
#include "nudge/protocol/endpoint.hpp"

namespace nudge::engine {

/// A named thing with a sentence for --help, the docs and the report.
struct term {
  std::string name;
  std::string doc;
};

/// A scenario key a family owns, e.g. "push.send_cookie" (written as
/// `[push] send_cookie = true` in a scenario file, `--set push.send_cookie=true`
/// on the command line). The scenario reader checks the type and keeps the text.
struct key_spec {
  enum class type : std::uint8_t { boolean, integer, number, duration, text };
  std::string key;
  type kind = type::text;
  std::string default_value;  // as a scenario file would write it
  std::string doc;
};

/// A row of client-sim's table and nudge-report's mode table: a label and the
/// counters it shows (several are joined by "/", e.g. "matched/ignored").
struct table_row {
  std::string label;
  std::vector<std::string> counters;
};

/// What a family says in results and reports. Indexes into these lists are
/// what the counters use: message kind k of this family is traffic row k.
/// Every family's kinds start with the transport's own rows (tcp_setup,
/// tcp_ack: the wire model's handshakes and pure-ACK estimate), at 0 and 1.
struct vocabulary {
  std::vector<term> modes;     // client modes, e.g. poll, push, async
  std::vector<term> kinds;     // message kinds, counted per direction
  std::vector<term> paths;     // how an event reached the client (latency per path)
  std::vector<term> counters;  // per-client-group counters, e.g. polls, wasted_polls
  /// How the tables show the counters, in order; empty: one row per counter,
  /// labelled with its name. A row that shows "wasted_polls" is followed by
  /// the seed article's unnecessary bytes and packets per client-hour.
  std::vector<table_row> table;
};

/// The service a server core offers, as clients must address it: the public
/// endpoint of each of its listeners and UDP sockets (after any NAT).
struct service_address {
  struct named_endpoint {
    std::uint32_t id;  // the core's listener_id or socket_id
    ip_endpoint at;
  };
  std::vector<named_endpoint> listeners;
  std::vector<named_endpoint> sockets;
};

struct family;

/// A family's scenario keys as one run set them: every declared key is
/// present (its default when the scenario did not set it), already
/// type-checked by the scenario reader, so the getters cannot fail on a
/// declared key. Asking for an undeclared key is a programming error.
class settings {
 public:
  /// Every key the family declares, at its default.
  static settings defaults(const family& f);
  void set(std::string key, std::string value);
  /// Sets a key of `f` from a person's text (a scenario file, `--set`):
  /// the reason when `f` declares no such key or the value is not of its
  /// type ("yes" for a boolean, "5 min" for a duration), nothing when set.
  /// Booleans accept true/false, durations "90", "90s", "250ms", "5min", "8h".
  std::optional<std::string> assign(const family& f, std::string_view key, std::string value);
  const std::string& text(std::string_view key) const;
  bool boolean(std::string_view key) const;
  std::int64_t integer(std::string_view key) const;
  double number(std::string_view key) const;
  duration span(std::string_view key) const;
  const std::vector<std::pair<std::string, std::string>>& entries() const { return entries_; }

 private:
  std::vector<std::pair<std::string, std::string>> entries_;  // sorted by key
};

/// What a client core is told when a driver creates it.
struct client_context {
  std::size_t client = 0;  // index in the run; per-client randomness derives from (seed, client)
  std::size_t mode = 0;    // index into the family's vocabulary().modes
  std::uint64_t seed = 1;
  /// Optional (captures): the core reports its estimated pure ACKs here, in time order.
  transport_observer* observer = nullptr;
  std::string mailbox;     // whose changes it learns about (the server's mailbox name)
  const settings* keys = nullptr;
  service_address server;  // where the family's server core listens, as the client must address it
  metrics::wire_model wire;
  /// The counters the client adds to, shared by its client group and sized for
  /// the family (client_metrics::fit); owned by the driver, outlives the core.
  metrics::client_metrics* metrics = nullptr;
};

/// A server core: the session contract plus the workload's hooks, which
/// every family's server offers in the same words (the control port's
/// `EVENT mailbox` and `STATS` map onto these).
class server_session : public session {
 public:
  /// "Something changed" in `mailbox` (created on first use). Returns the
  /// event's id as the protocol stamps it (the control port's `OK <id>`), 0
  /// when the protocol numbers no events.
  virtual std::uint64_t inject_event(time_point now, std::string_view mailbox) = 0;

  /// A short name for `mailbox`, so a driver that injects events into the same
  /// mailboxes all day names each once rather than per event. Resolving a
  /// handle counts as the mailbox's first use (it may create it). The default
  /// only remembers the name; a core with its own mailbox table overrides both.
  using mailbox_handle_t = std::uint32_t;
  virtual mailbox_handle_t mailbox_handle(std::string_view mailbox) {
    handle_names_.emplace_back(mailbox);
    return static_cast<mailbox_handle_t>(handle_names_.size() - 1);
  }
  /// As inject_event by name, for a mailbox named by mailbox_handle().
  virtual std::uint64_t inject_event(time_point now, mailbox_handle_t mailbox) {
    return inject_event(now, std::string_view(handle_names_[mailbox]));
  }
  /// Counters for STATS and the result's server block: (name, value) pairs.
  /// A dotted name ("traffic.ping.to_client.messages") nests in JSON.
  virtual std::vector<std::pair<std::string, std::uint64_t>> stats() const = 0;

  /// The mailboxes the core knows, numbered densely in the order it first
  /// met them (the live host's event generator picks among them).
  virtual std::size_t mailbox_count() const { return 0; }
  /// Mailbox `index` (< mailbox_count()); the view lasts until the next call into the core.
  virtual std::string_view mailbox_name(std::size_t /*index*/) const { return {}; }

  /// A mailbox whose events are not all fetched yet.
  struct mailbox_backlog {
    std::string mailbox;
    std::uint64_t generated = 0;
    std::uint64_t fetched = 0;
    std::uint64_t pending = 0;
  };
  /// Up to `max` mailboxes with undelivered events (STATS' pending_mailboxes);
  /// `truncated` is set when more were left out.
  virtual std::vector<mailbox_backlog> backlog(std::size_t /*max*/, bool& truncated) const {
    truncated = false;
    return {};
  }

 private:
  std::vector<std::string> handle_names_;  // the default mailbox_handle()'s table
};

struct server_context {
  const settings* keys = nullptr;
  metrics::wire_model wire;
  /// Datagrams and connections to non-loopback addresses are refused unless
  /// set (the virtual driver sets it: its addresses never reach a socket).
  bool allow_non_loopback = false;
};

struct family {
  std::string name;  // "emsmdb": also the `protocol` value in a scenario's [[clients]]
  std::string doc;   // one line: what design it emulates (seed article, spec)
  vocabulary words;
  std::vector<key_spec> keys;
  /// Client and server cores. A family without a server (a pure client of a
  /// third-party service) leaves make_server empty.
  std::function<std::unique_ptr<session>(const client_context&)> make_client;
  std::function<std::unique_ptr<server_session>(const server_context&)> make_server;
  /// How captures of the family are read (nudge-pcap); null when the family
  /// offers no capture reading. Points at a stateless instance that lives
  /// for the whole program.
  const capture_classifier* capture = nullptr;
};

/// Counters sized for a family's vocabulary (its paths and counters).
metrics::client_metrics metrics_for(const family& f);

/// The index of `name` in a vocabulary list (modes, kinds, paths, counters).
std::optional<std::size_t> index_of(const std::vector<term>& terms, std::string_view name);

/// The registry proper. Families register before main() runs any driver; the
/// registry never changes afterwards, so readers need no lock.
class registry {
 public:
  static registry& instance();
  /// Adds a family; a second family of the same name is a programming error.
  void add(family f);
  const family* find(std::string_view name) const;
  const std::vector<family>& families() const { return families_; }

 private:
  std::vector<family> families_;
};

}  // namespace nudge::engine
