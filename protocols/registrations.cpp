#include "nudge/protocols/registrations.hpp"

#include <memory>
#include <utility>

#include "nudge/emsmdb/family.hpp"
#include "nudge/engine/registry.hpp"
#include "nudge/notifier/emsmdb_server_factory.hpp"

namespace nudge::protocols {

void register_all() {
  // Programs and test setups may each call this; the families go in once.
  static const bool done = [] {
    auto& r = engine::registry::instance();
    auto emsmdb = protocol::emsmdb::family();
    emsmdb.make_server = [](const engine::server_context& ctx) -> std::unique_ptr<engine::server_session> {
      return notifier::make_emsmdb_server(ctx);
    };
    // make_client waits for client_context to carry the counters (the
    // generic client metrics); until then drivers call client::make_emsmdb_client.
    r.add(std::move(emsmdb));
    return true;
  }();
  (void)done;
}

}  // namespace nudge::protocols
