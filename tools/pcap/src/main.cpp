// nudge-pcap: per-client, per-mode, per-kind traffic of a capture of the notifier's protocols.
#include <iostream>

#include "nudge/pcap/cli.hpp"

int main(int argc, char** argv) { return nudge::pcap_tool::pcap_main(argc, argv, std::cout, std::cerr); }
