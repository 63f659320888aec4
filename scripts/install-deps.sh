#!/usr/bin/env bash
# Installs the Debian 12 packages nudge builds and tests with (every tool the
# test suite and .ci/fuzz.sh call), only those missing.
# Runs `apt-get update` at most once, and only when something must be installed.
set -euo pipefail

packages=(
  cmake ninja-build ccache g++ clang libclang-rt-14-dev pkg-config
  libboost1.81-dev libcli11-dev libpcap-dev
  googletest libgtest-dev libgmock-dev libbenchmark-dev
  nlohmann-json3-dev libtomlplusplus-dev libfmt-dev
  # The tests' tools (.ci/run fails a test whose tool is missing, NUDGE_REQUIRE_TOOLS=1):
  tshark wireshark-common  # tshark judges captures; editcap (wireshark-common) converts them to pcapng
  iproute2                 # `ip link set lo up` in the network-namespace test; `ip netns` and `ss` in the kernel NAT testbed
  gnuplot-nox chromium     # nudge-report draws charts with gnuplot; its test renders report.html in headless Chromium
  jq time                  # scripts/figures.sh reads results with jq and times runs with /usr/bin/time
  libpugixml-dev           # the polling bus's SOAP envelopes are read and written with pugixml
  mono-mcs libmono-system-web-services4.0-cil mono-devel  # the real .NET SOAP client judges the polling bus; mono-devel has `wsdl`
  wrk nginx-light          # the bus's load benchmark: wrk against the notifier and against nginx
  nftables conntrack       # the kernel NAT testbed: the router's SNAT and filter (nft), its conntrack table flushed and checked
  stun-client coturn       # the STUN judges of the kernel NAT: Vovida `stun`, coturn's turnserver and turnutils_natdiscovery
  libwbxml2-utils          # wbxml2xml/xml2wbxml judge ActiveSync's WBXML bodies (tests/tools/activesync_capture_test.cpp)
  libssl-dev openssl      # WebSub's X-Hub-Signature: HMAC-SHA256 from libcrypto; `openssl dgst -hmac` judges it
  php-cli php-curl php-pubsubhubbub-publisher  # a real WebSub publisher (PHP) judges the hub's publish endpoint
  tcpreplay                # bench/replay_topspeed.sh sets nudge-replay beside tcpreplay --topspeed; tcprewrite makes foreign captures for the replay tests
  # clang and libclang-rt-14-dev above build the fuzz preset (libFuzzer) that .ci/fuzz.sh runs.
)

missing=()
for p in "${packages[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  [[ "$status" == "install ok installed" ]] || missing+=("$p")
done

if ((${#missing[@]} == 0)); then
  echo "install-deps: all ${#packages[@]} packages present"
  exit 0
fi

echo "install-deps: installing ${missing[*]}"
sudo_cmd=()
[[ $(id -u) -eq 0 ]] || sudo_cmd=(sudo)
export DEBIAN_FRONTEND=noninteractive
# tshark asks whether non-root users may capture; answer once, non-interactively.
echo "wireshark-common wireshark-common/install-setuid boolean false" | "${sudo_cmd[@]}" debconf-set-selections
"${sudo_cmd[@]}" apt-get update -qq
"${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
