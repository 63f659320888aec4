#!/usr/bin/env bash
# The README's test command: installs what is missing (Debian 12), builds the
# dev preset (debug, -Werror) and runs every test tier with ctest.
# Options: PRESET=asan to run under AddressSanitizer + UBSan; CTEST_ARGS="-L unit" to pick tiers.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-deps.sh
preset=${PRESET:-dev}
cmake --preset "$preset" >/dev/null
cmake --build --preset "$preset" -j "$(nproc)"
# The fidelity tests compare with the reference capture in shared/ beside the checkout.
export NUDGE_SHARED_DIR=${NUDGE_SHARED_DIR:-$(cd .. && pwd)/shared}
# shellcheck disable=SC2086
ctest --preset "$preset" -j "$(nproc)" ${CTEST_ARGS:-}
