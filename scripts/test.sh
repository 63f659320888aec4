#!/usr/bin/env bash
# The README's test command: installs what is missing (Debian 12), builds the
# dev preset (debug, -Werror) and runs every test tier with ctest.
# Options: PRESET=asan to run under AddressSanitizer + UBSan; CTEST_ARGS="-L unit" to pick tiers;
# NUDGE_REQUIRE_TOOLS=1 (what .ci/run sets) to fail, not skip, a test whose tool,
# capability or reference file is missing, and to fail the run if ctest skipped anything.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-deps.sh
preset=${PRESET:-dev}
cmake --preset "$preset" >/dev/null
cmake --build --preset "$preset" -j "$(nproc)"
# The fidelity tests compare with the reference capture in shared/ beside the checkout.
export NUDGE_SHARED_DIR=${NUDGE_SHARED_DIR:-$(cd .. && pwd)/shared}
export NUDGE_REQUIRE_TOOLS=${NUDGE_REQUIRE_TOOLS:-0}

log=$(mktemp "${TMPDIR:-/tmp}/nudge-ctest.XXXXXX")
trap 'rm -f "$log"' EXIT
status=0
# shellcheck disable=SC2086
ctest --preset "$preset" -j "$(nproc)" --no-tests=error ${CTEST_ARGS:-} 2>&1 | tee "$log" || status=$?

# ctest counts a skipped test as passed; list them, and under NUDGE_REQUIRE_TOOLS=1 fail.
skipped=$(grep -cE '\(Skipped\)[[:space:]]*$' "$log" || true)
if ((skipped > 0)); then
  if [[ "$NUDGE_REQUIRE_TOOLS" != 0 && -n "$NUDGE_REQUIRE_TOOLS" ]]; then
    echo "test.sh: FAILED: $skipped test(s) skipped with NUDGE_REQUIRE_TOOLS=$NUDGE_REQUIRE_TOOLS (listed above)" >&2
    status=1
  else
    echo "test.sh: $skipped test(s) skipped for a missing tool, capability or reference file (listed above);" \
         "NUDGE_REQUIRE_TOOLS=1 makes them failures" >&2
  fi
fi
exit "$status"
