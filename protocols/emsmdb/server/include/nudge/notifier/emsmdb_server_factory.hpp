#pragma once
// The EMSMDB family's server factory (engine::family::make_server): the
// notifier's settings from the family's keys (nudge/emsmdb/family.cpp).
#include <memory>

#include "nudge/engine/registry.hpp"
#include "nudge/notifier/emsmdb_server_core.hpp"
#include "nudge/notifier/notifier_core.hpp"

namespace nudge::notifier {

/// The notifier's configuration from the family's `server.*` keys; ports are
/// left at 0 (the driver picks; the core learns them from `listening`).
notifier_config notifier_config_of(const engine::settings& keys);

std::unique_ptr<emsmdb_server_core> make_emsmdb_server(const engine::server_context& ctx);

}  // namespace nudge::notifier
