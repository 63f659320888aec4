#include "nudge/protocols/registrations.hpp"

#include <memory>
#include <utility>

#include "nudge/activesync/family.hpp"
#include "nudge/client/emsmdb_client_core.hpp"
#include "nudge/emsmdb/capture_classifier.hpp"
#include "nudge/emsmdb/family.hpp"
#include "nudge/engine/registry.hpp"
#include "nudge/notifier/emsmdb_server_factory.hpp"
#include "nudge/pollbus/family.hpp"
#include "nudge/websub/family.hpp"

namespace nudge::protocols {

void register_all() {
  // Programs and test setups may each call this; the families go in once.
  static const bool done = [] {
    auto& r = engine::registry::instance();
    auto emsmdb = protocol::emsmdb::family();
    emsmdb.make_server = [](const engine::server_context& ctx) -> std::unique_ptr<engine::server_session> {
      return notifier::make_emsmdb_server(ctx);
    };
    emsmdb.make_client = [](const engine::client_context& ctx) -> std::unique_ptr<engine::session> {
      return client::make_emsmdb_client(ctx);
    };
    emsmdb.capture = &protocol::emsmdb::emsmdb_capture_classifier();
    r.add(std::move(emsmdb));
    r.add(pollbus::family());  // seed 003: the ASP.NET polling bus
    r.add(activesync::family());  // seed 000: Exchange ActiveSync Direct Push
    r.add(websub::family());   // seed 000: WebSub webhooks (a hub that calls subscribers back)
    return true;
  }();
  (void)done;
}

}  // namespace nudge::protocols
