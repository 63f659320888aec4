// The registry and the families' declarations: what results and reports name.
#include <gtest/gtest.h>

#include <chrono>
#include <stdexcept>

#include "nudge/emsmdb/family.hpp"
#include "nudge/engine/registry.hpp"
#include "nudge/protocols/registrations.hpp"

namespace {

using namespace std::chrono_literals;
using nudge::engine::registry;
namespace emsmdb = nudge::protocol::emsmdb;

class registry_test : public ::testing::Test {
 protected:
  void SetUp() override { nudge::protocols::register_all(); }
};

TEST_F(registry_test, register_all_is_idempotent) {
  const auto before = registry::instance().families().size();
  nudge::protocols::register_all();
  EXPECT_EQ(registry::instance().families().size(), before);
}

TEST_F(registry_test, finds_emsmdb_and_nothing_unknown) {
  ASSERT_NE(registry::instance().find("emsmdb"), nullptr);
  EXPECT_EQ(registry::instance().find("no-such-family"), nullptr);
}

TEST_F(registry_test, a_second_family_of_the_same_name_is_refused) {
  registry r;
  r.add(emsmdb::family());
  EXPECT_THROW(r.add(emsmdb::family()), std::logic_error);
}

TEST_F(registry_test, every_family_starts_its_kinds_with_the_transport_rows) {
  for (const auto& f : registry::instance().families()) {
    ASSERT_GE(f.words.kinds.size(), 2u) << f.name;
    EXPECT_EQ(f.words.kinds[0].name, "tcp_setup") << f.name;
    EXPECT_EQ(f.words.kinds[1].name, "tcp_ack") << f.name;
  }
}

TEST_F(registry_test, emsmdb_vocabulary_follows_its_enums) {
  const auto* f = registry::instance().find("emsmdb");
  ASSERT_NE(f, nullptr);
  ASSERT_EQ(f->words.kinds.size(), emsmdb::message_kind_count);
  for (std::size_t k = 0; k < emsmdb::message_kind_count; ++k)
    EXPECT_EQ(f->words.kinds[k].name, emsmdb::to_string(static_cast<emsmdb::message_kind>(k)));
  ASSERT_EQ(f->words.counters.size(), emsmdb::counter_count);
  for (std::size_t c = 0; c < emsmdb::counter_count; ++c)
    EXPECT_EQ(f->words.counters[c].name, emsmdb::to_string(static_cast<emsmdb::counter>(c)));
  EXPECT_EQ(nudge::engine::index_of(f->words.modes, "push"), 1u);
  EXPECT_EQ(nudge::engine::index_of(f->words.paths, "async"), 2u);
  EXPECT_EQ(nudge::engine::index_of(f->words.kinds, "register"),
            static_cast<std::size_t>(emsmdb::message_kind::register_push));
  EXPECT_FALSE(nudge::engine::index_of(f->words.modes, "idle"));
}

TEST_F(registry_test, settings_hold_every_declared_key_at_its_default) {
  const auto* f = registry::instance().find("emsmdb");
  ASSERT_NE(f, nullptr);
  const auto s = nudge::engine::settings::defaults(*f);
  EXPECT_EQ(s.entries().size(), f->keys.size());
  EXPECT_EQ(s.span("poll.interval"), 60s);
  EXPECT_EQ(s.span("server.async_hold"), 5min);
  EXPECT_FALSE(s.boolean("poll.jitter"));
  EXPECT_EQ(s.integer("push.context_size"), 8);
  EXPECT_EQ(s.text("server.policy"), "legacy");
}

TEST_F(registry_test, settings_getters_read_what_was_set) {
  nudge::engine::settings s;
  s.set("b", "true");
  s.set("a", "250ms");
  s.set("n", "0.25");
  s.set("i", "-3");
  s.set("a", "2h");  // a second set replaces
  EXPECT_EQ(s.entries().front().first, "a");
  EXPECT_EQ(s.span("a"), 2h);
  EXPECT_TRUE(s.boolean("b"));
  EXPECT_DOUBLE_EQ(s.number("n"), 0.25);
  EXPECT_EQ(s.integer("i"), -3);
  EXPECT_THROW((void)s.text("undeclared"), std::logic_error);
  EXPECT_THROW((void)s.boolean("n"), std::logic_error);
}

}  // namespace
