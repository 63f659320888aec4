#pragma once
// What a run is: how many clients, in which modes, how often things change,
// for how long, on which seed. Both drivers take a run_plan and produce a
// run_result, so real-socket and virtual-time runs are compared like for like.
#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "nudge/client/client_session.hpp"
#include "nudge/engine/registry.hpp"
#include "nudge/metrics/traffic.hpp"
#include "nudge/notifier/notifier_core.hpp"
#include "nudge/protocol/clock.hpp"
#include "nudge/sim/event_process.hpp"

namespace nudge::sim {

using namespace std::chrono_literals;

/// One-way network conditions between each client and the notifier (virtual time).
struct link_model {
  duration one_way_delay = 1ms;
  duration jitter = 0ms;  // uniform extra delay in [0, jitter]; TCP keeps order
  double udp_loss = 0.0;  // datagram loss probability (TCP is reliable: no loss)
  /// Each client's access link rate, bits per second in each direction (0:
  /// unlimited): a packet waits for the link, then takes wire_bytes * 8 / rate.
  double rate_bps = 0.0;
};

/// A share of the clients behind one kind of NAT (by default each client behind
/// its own device, as home users were). `preset` is "none" or a netsim preset name.
struct nat_share {
  std::string preset = "none";
  double fraction = 1.0;
  duration udp_timeout = duration::zero();  // 0: the preset's own
  /// The TCP established idle timeout (0: the preset's own): a home gateway's
  /// shorter one makes held connections (ActiveSync Ping) die silently.
  duration tcp_timeout = duration::zero();
  std::uint32_t clients_per_device = 1;      // clients sharing one device (one public address)
  /// --clock real: realise this NAT in the Linux kernel, in network namespaces
  /// (client-sim/kernelnat, docs/kernel-nat.md). Virtual runs model it as always.
  bool kernel = false;
  std::string label() const;
};

/// How a scenario stated the event rate. per_client_day and the MMPP's two state
/// rates are derived keys: the hourly mean they give depends on the business
/// hours and the MMPP's sojourn means. The plan keeps them as stated, and the
/// scenario reader (scenario.cpp) derives events_per_client_hour (and the burst
/// ratio) from them after every file key and --set has been applied, so the
/// plan does not depend on the order the keys were given in.
struct event_rate_statement {
  enum class form : std::uint8_t { per_client_hour, per_client_day, mmpp_state_rates };
  form given = form::per_client_hour;  // per_client_hour: events_per_client_hour is the statement
  double per_client_day = 0;
  double high_per_client_hour = 0, low_per_client_hour = 0;
};

/// A share of the clients running one protocol family's client in one of its
/// modes. `protocol` and `mode` are names from the registry
/// (nudge/engine/registry.hpp): a scenario's [[clients]] entry, or a [mix] key.
struct client_group {
  client_group() = default;
  client_group(std::string protocol_name, std::string mode_name, double share_of_clients, std::string group_label = {},
               std::vector<std::pair<std::string, std::string>> group_keys = {})
      : protocol(std::move(protocol_name)),
        mode(std::move(mode_name)),
        share(share_of_clients),
        label(std::move(group_label)),
        keys(std::move(group_keys)) {}

  std::string protocol = "emsmdb";
  std::string mode = "poll";
  double share = 0.0;
  /// Optional: the group's name in results and reports (default: its mode), so
  /// two groups of one mode (say SOAP and JSON) can run side by side.
  std::string label;
  /// Optional: the group's own values of its family's client keys (key, value
  /// as a scenario writes it; sorted by key), over the run's: `set = {"pollbus.encoding" = "json"}`.
  std::vector<std::pair<std::string, std::string>> keys;
  /// The label, or the mode when there is none.
  const std::string& name() const { return label.empty() ? mode : label; }
  friend bool operator==(const client_group&, const client_group&) = default;
};

/// The registered family called `name` (a [[clients]] protocol), or null.
/// Registers every family first (protocols::register_all(), idempotent), so
/// plans and results can be read before any main() ran.
const engine::family* protocol_family(std::string_view name);

/// The EMSMDB groups poll, push and async with these shares, in that order:
/// what a [mix] table or `--mix` states.
std::vector<client_group> emsmdb_mix(double poll, double push, double async);

/// A setting only a virtual run can honour, named by its scenario key.
struct virtual_only_setting {
  std::string key;  // e.g. "network.one_way_delay"
  std::string why;  // e.g. "applies only to --clock virtual; a real run's network is the loopback interface"
};

struct run_plan {
  std::size_t clients = 100;
  /// The client groups, in the order results list them; shares are normalised
  /// when used. Default: all clients poll (with empty push and async groups).
  std::vector<client_group> mix = emsmdb_mix(1.0, 0.0, 0.0);
  /// Client poll interval; zero means the server's pcmsPollsMax.
  duration poll_interval = 60s;
  bool poll_jitter = false;
  /// "Something changed" events per mailbox per hour: the long-run mean rate
  /// while events may arrive (per business hour when business hours are on).
  double events_per_client_hour = 60.0;
  /// How those events arrive: Poisson (the default, as always), bursty (MMPP),
  /// within business hours or not (client-sim/workload/.../event_process.hpp).
  event_process_spec event_process;
  /// How the rate was stated, when it was derived (see event_rate_statement).
  event_rate_statement event_rate_as_given;
  /// Clients start spread evenly over the ramp; events run from 0 to `length`;
  /// the drain that follows has no new events, so late fetches still count.
  duration ramp_up = 0s;
  duration length = 60s;
  duration drain = 10s;
  std::uint64_t seed = 1;

  // Push-mode client behaviour.
  std::size_t context_size = 8;
  bool poll_until_first_ping = true;
  bool send_cookie = false;
  duration keepalive_interval = 0s;
  duration fallback_check_interval = 0s;

  notifier::notifier_config server;
  metrics::wire_model wire;

  /// Keys of families other than EMSMDB (whose keys are the fields above), as
  /// a scenario set them: `[pollbus] encoding = "json"`, `--set pollbus.keep_alive=false`.
  /// (key, value as text), sorted by key; the scenario reader type-checks them.
  std::vector<std::pair<std::string, std::string>> family_keys;
  void set_family_key(std::string key, std::string value);
  /// The keys of `f` for this run: its defaults, the plan's EMSMDB settings and
  /// family_keys where `f` declares them, then group `g`'s own (if given).
  engine::settings settings_for(const engine::family& f, std::optional<std::size_t> group = std::nullopt) const;

  link_model link;

  /// Who sits behind which NAT (virtual time only). Empty: nobody.
  std::vector<nat_share> nat_mix;

  /// What nudge-report checks on this plan's result ([report] thresholds in a
  /// scenario file, docs/report.md). The drivers only carry them into the result.
  std::vector<std::string> report_thresholds;

  /// Client i's NAT group (an index into nat_mix; all 0 when nat_mix is empty),
  /// with exact counts per group, shuffled independently of the modes.
  std::vector<std::size_t> assign_nat_groups() const;
  std::size_t nat_group_count() const { return nat_mix.empty() ? 1 : nat_mix.size(); }
  std::string nat_label(std::size_t group) const { return nat_mix.empty() ? "none" : nat_mix[group].label(); }
  /// A [[nat]] entry asks for the kernel NAT testbed (kernel = true).
  bool kernel_nat() const;

  /// Client i's group (an index into mix): a deterministic assignment with
  /// exact counts per group.
  std::vector<std::size_t> assign_groups() const;
  /// Client i's mode (the EMSMDB drivers' view of assign_groups()).
  std::vector<client::client_mode> assign_modes() const;
  /// The EMSMDB client mode of group g.
  client::client_mode group_mode(std::size_t g) const;
  /// The group running EMSMDB `mode`, if the plan has one.
  std::optional<std::size_t> group_of(client::client_mode mode) const;
  /// The mailbox (user DN) of client i.
  static std::string user_dn(std::size_t i);
  /// The context client i registers (context_size bytes, unique per client).
  protocol::push_context context_for(std::size_t i) const;
  /// Builds client i's configuration (the callback address is the driver's to set).
  client::client_config client_config_for(std::size_t i, client::client_mode mode) const;
  /// The plan's EMSMDB settings as the family's keys (nudge/emsmdb/family.cpp)
  /// name them: what the registry's factories read.
  engine::settings family_settings() const;
  /// Empty when valid, else a message naming the bad field.
  std::string validate() const;
  /// The settings, changed from their defaults, that a real run (real sockets on
  /// loopback, against a notifier started on its own) cannot honour: the link
  /// model, NAT, and the in-process notifier's [server] settings. Empty: the
  /// plan runs in real time as written. With a kernel NAT (kernel_nat()), the
  /// NAT and the [server] settings are honoured: client-sim builds the NAT in
  /// the kernel and starts the notifier itself.
  std::vector<virtual_only_setting> virtual_only_settings() const;
};

}  // namespace nudge::sim
