// nudge-replay: re-drives the client sessions of a capture against a live
// notifier on loopback. See docs/captures.md.
#include "nudge/replay/cli.hpp"

int main(int argc, char** argv) { return nudge::replay::replay_main(argc, argv); }
