// client-sim: emulated Outlook-style clients (poll, push, async) against the
// nudge notifier, over loopback sockets or in virtual time. See docs/client-sim.md.
#include "nudge/protocols/registrations.hpp"
#include "nudge/sim/client_sim_cli.hpp"

int main(int argc, char** argv) {
  nudge::protocols::register_all();  // every protocol family, before any plan is read
  return nudge::sim::client_sim_main(argc, argv);
}
