#pragma once
// The one place every protocol family is registered (protocols/registrations.cpp).
// Programs call register_all() first thing in main(), tests in their setup; it
// is explicit so no linker can drop a family's registration.

namespace nudge::protocols {

/// Registers every family with engine::registry::instance(). Idempotent and
/// thread-safe (a function-local static).
void register_all();

}  // namespace nudge::protocols
