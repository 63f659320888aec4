#include "nudge/notifier/emsmdb_server_factory.hpp"

namespace nudge::notifier {

notifier_config notifier_config_of(const engine::settings& k) {
  notifier_config c;
  // The scenario reader has checked the policy's spelling; an unknown one keeps the default.
  c.policy = parse_callback_policy(k.text("server.policy")).value_or(c.policy);
  c.polls_max_ms = static_cast<std::uint32_t>(k.integer("server.polls_max_ms"));
  c.ping_resend = k.span("server.ping_resend");
  c.async_hold = k.span("server.async_hold");
  c.push_enabled = k.boolean("server.push_enabled");
  c.async_enabled = k.boolean("server.async_enabled");
  c.max_pending_per_mailbox = static_cast<std::size_t>(k.integer("server.max_pending_per_mailbox"));
  return c;
}

std::unique_ptr<emsmdb_server_core> make_emsmdb_server(const engine::server_context& ctx) {
  emsmdb_server_config cfg;
  if (ctx.keys) cfg.core = notifier_config_of(*ctx.keys);
  cfg.core.allow_non_loopback = ctx.allow_non_loopback;
  cfg.core.wire = ctx.wire;
  return std::make_unique<emsmdb_server_core>(cfg);
}

}  // namespace nudge::notifier
