#include "nudge/protocols/registrations.hpp"

#include "nudge/emsmdb/family.hpp"
#include "nudge/engine/registry.hpp"

namespace nudge::protocols {

void register_all() {
  // Programs and test setups may each call this; the families go in once.
  static const bool done = [] {
    auto& r = engine::registry::instance();
    r.add(protocol::emsmdb::family());
    return true;
  }();
  (void)done;
}

}  // namespace nudge::protocols
