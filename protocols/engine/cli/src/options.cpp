#include "nudge/cli/options.hpp"

namespace nudge::cli {

CLI::Option* add_endpoint_option(CLI::App& app, const std::string& name, std::string& text, const std::string& help) {
  return app.add_option(name, text, help)->type_name("ADDR:PORT");
}

result<protocol::ip_endpoint> parse_endpoint(std::string_view flag, const std::string& text) {
  auto ep = protocol::ip_endpoint::parse(text);
  if (!ep || ep->port == 0)
    return fail(std::string(flag) + " " + text + ": expected ADDRESS:PORT, e.g. 127.0.0.1:7777");
  return *ep;
}

CLI::Option* add_seed_option(CLI::App& app, std::uint64_t& seed, const std::string& help) {
  return app.add_option("--seed", seed, help)->type_name("N");
}

}  // namespace nudge::cli
