#include "nudge/notifier/notifier_server.hpp"

#include <utility>

#include <fmt/format.h>

namespace nudge::notifier {

namespace {

std::vector<served_protocol> with_emsmdb(const server_config& cfg, const emsmdb_server_core*& emsmdb,
                                         std::vector<served_protocol> others) {
  emsmdb_server_config ec;
  ec.core = cfg.core;
  ec.core.tcp_port = cfg.tcp_listen.port;
  ec.udp_port = cfg.udp_bind.port;
  auto core = std::make_unique<emsmdb_server_core>(ec);
  emsmdb = core.get();
  std::vector<served_protocol> all;
  all.push_back(served_protocol{
      "emsmdb", std::move(core), cfg.tcp_listen, cfg.udp_bind,
      fmt::format("; policy {}, push {}, async {}", to_string(cfg.core.policy), cfg.core.push_enabled ? "on" : "off",
                  cfg.core.async_enabled ? "on" : "off")});
  for (auto& o : others) all.push_back(std::move(o));
  return all;
}

host_config host_config_of(const server_config& c) {
  host_config h;
  h.control = c.control;
  h.events_per_mailbox_hour = c.events_per_mailbox_hour;
  h.seed = c.seed;
  h.allow_non_loopback = c.core.allow_non_loopback;
  h.udp_buffer_bytes = c.udp_buffer_bytes;
  h.max_unsent_bytes_per_connection = c.max_unsent_bytes_per_connection;
  h.max_queued_datagrams = c.max_queued_datagrams;
  h.accept_retry = c.accept_retry;
  return h;
}

}  // namespace

result<std::vector<served_protocol>> other_registered_servers(
    const server_config& cfg, std::deque<engine::settings>& keys,
    const std::vector<std::pair<std::string, std::string>>& family_keys) {
  const auto& families = engine::registry::instance().families();
  std::vector<served_protocol> out;
  std::vector<engine::settings> chosen;
  std::vector<const engine::family*> served;
  for (const engine::family& f : families) {
    if (f.name == "emsmdb" || !f.make_server) continue;
    served.push_back(&f);
    chosen.push_back(engine::settings::defaults(f));
  }
  for (const auto& [key, value] : family_keys) {
    // A key belongs to the served family that declares it.
    std::size_t owner = served.size();
    for (std::size_t i = 0; i < served.size(); ++i)
      for (const auto& k : served[i]->keys)
        if (k.key == key) owner = i;
    if (owner == served.size()) {
      std::string names;
      for (const auto* f : served) names += (names.empty() ? "" : ", ") + f->name;
      return fail(fmt::format("--set {}: no served protocol declares that key ({}; notifier --protocols lists "
                              "their keys; EMSMDB is configured by its own options)",
                              key, names.empty() ? "no other protocol is registered" : "served: " + names));
    }
    if (auto why = chosen[owner].assign(*served[owner], key, value)) return fail("--set: " + *why);
  }
  for (std::size_t i = 0; i < served.size(); ++i) {
    keys.push_back(std::move(chosen[i]));
    engine::server_context ctx;
    ctx.keys = &keys.back();
    ctx.wire = cfg.core.wire;
    ctx.allow_non_loopback = cfg.core.allow_non_loopback;
    ip_endpoint tcp_at = cfg.tcp_listen;
    ip_endpoint udp_at = cfg.udp_bind;
    tcp_at.port = udp_at.port = 0;  // the core's `listen` / `bind_udp` name the ports
    out.push_back(served_protocol{served[i]->name, served[i]->make_server(ctx), tcp_at, udp_at, {}});
  }
  return out;
}

notifier_server::notifier_server(boost::asio::io_context& io, server_config cfg, log_sink log,
                                 std::vector<served_protocol> others)
    : cfg_(std::move(cfg)),
      emsmdb_(nullptr),
      host_(io, host_config_of(cfg_), with_emsmdb(cfg_, emsmdb_, std::move(others)), std::move(log)) {}

notifier_server::~notifier_server() = default;

std::optional<std::string> notifier_server::start() {
  // The command line checks this too; the server enforces it for every caller.
  for (const auto& [what, at] : {std::pair{"DCE/RPC", cfg_.tcp_listen}, std::pair{"UDP", cfg_.udp_bind}})
    if (!cfg_.core.allow_non_loopback && !at.is_loopback()) {
      host_.stop();
      return fmt::format("refusing to bind the {} socket to {}: not a loopback address", what, at.to_string());
    }
  return host_.start();
}

void notifier_server::stop() { host_.stop(); }
bool notifier_server::stopped() const { return host_.stopped(); }

ip_endpoint notifier_server::tcp_endpoint() const {
  return host_.listener_endpoint(0, emsmdb_server_core::rpc_listener).value_or(cfg_.tcp_listen);
}
ip_endpoint notifier_server::udp_endpoint() const {
  return host_.socket_endpoint(0, emsmdb_server_core::ping_socket).value_or(cfg_.udp_bind);
}
std::optional<ip_endpoint> notifier_server::control_endpoint() const { return host_.control_endpoint(); }
const notifier_core& notifier_server::core() const { return emsmdb_->core(); }
const driver_stats& notifier_server::stats() const { return host_.stats(); }
time_point notifier_server::started_at() const { return host_.started_at(); }

}  // namespace nudge::notifier
