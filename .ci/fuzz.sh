#!/usr/bin/env bash
# Bounded fuzzing. Builds the `fuzz` preset (clang, libFuzzer + ASan + UBSan) and
# runs every target in tests/fuzz for FUZZ_SECONDS (default 20) each, starting
# from its seed corpus (tests/fuzz/corpus/<target> plus seeds freshly generated
# by nudge_fuzz_make_corpus), copied to a temporary directory so the repository
# is never modified. Prints one line per target; exits non-zero if any target
# crashed (sanitizer report, violated property, timeout or out-of-memory), after
# printing the report, the crash input in hex and where the artifacts were kept.
#
#   FUZZ_SECONDS=10 .ci/fuzz.sh                    # every target, 10 s each
#   FUZZ_TARGETS="fuzz_rop_buffer" .ci/fuzz.sh     # a subset
# Other knobs: FUZZ_RSS_MB (2048), FUZZ_TIMEOUT (30 s per input), FUZZ_KEEP=1 (keep the temp dir).
set -uo pipefail
cd "$(dirname "$0")/.."

FUZZ_SECONDS=${FUZZ_SECONDS:-20}
FUZZ_RSS_MB=${FUZZ_RSS_MB:-2048}
FUZZ_TIMEOUT=${FUZZ_TIMEOUT:-30}
all_targets=(fuzz_dcerpc_pdu fuzz_dcerpc_stream fuzz_emsmdb_stubs fuzz_rop_buffer fuzz_sockaddr fuzz_push_datagram
             fuzz_notifier_session fuzz_client_session fuzz_pcap_reader fuzz_classifier
             fuzz_http_request fuzz_http_response fuzz_pollbus_body fuzz_pollbus_server
             fuzz_websub_form fuzz_websub_hub)
read -r -a targets <<<"${FUZZ_TARGETS:-${all_targets[*]}}"

echo "== fuzz: building the fuzz preset"
if ! cmake --preset fuzz >/tmp/nudge-fuzz-configure.$$ 2>&1; then
  cat /tmp/nudge-fuzz-configure.$$; rm -f /tmp/nudge-fuzz-configure.$$; exit 1
fi
rm -f /tmp/nudge-fuzz-configure.$$
cmake --build --preset fuzz || exit 1

bin=build/fuzz/fuzz
work=$(mktemp -d "${TMPDIR:-/tmp}/nudge-fuzz.XXXXXX")
keep=${FUZZ_KEEP:-0}
cleanup() {
  if [[ "$keep" == 1 ]]; then echo "== fuzz: work directory kept: $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT

generated="$work/generated"
if [[ -x "$bin/nudge_fuzz_make_corpus" ]]; then
  "$bin/nudge_fuzz_make_corpus" "$generated" >/dev/null || echo "warning: seed generation failed" >&2
fi

# UB is a crash, not a warning; leaks are reported by libFuzzer's own leak check.
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_stack_use_after_return=1}

echo "== fuzz: ${#targets[@]} targets, ${FUZZ_SECONDS}s each (rss limit ${FUZZ_RSS_MB} MB)"
failed=()
for t in "${targets[@]}"; do
  if [[ ! -x "$bin/$t" ]]; then
    echo "$t: MISSING (not built)"; failed+=("$t"); continue
  fi
  dir="$work/$t"
  mkdir -p "$dir/corpus" "$dir/artifacts"
  [[ -d "tests/fuzz/corpus/$t" ]] && cp -r "tests/fuzz/corpus/$t/." "$dir/corpus/"
  [[ -d "$generated/$t" ]] && cp -r "$generated/$t/." "$dir/corpus/"
  seeds=$(find "$dir/corpus" -type f | wc -l)

  "$bin/$t" "$dir/corpus" -max_total_time="$FUZZ_SECONDS" -rss_limit_mb="$FUZZ_RSS_MB" -timeout="$FUZZ_TIMEOUT" \
    -print_final_stats=1 -artifact_prefix="$dir/artifacts/" >"$dir/log" 2>&1
  rc=$?

  execs=$(awk '/^stat::number_of_executed_units:/ {v=$2} END {print v}' "$dir/log")
  [[ -z "$execs" ]] && execs=$(grep -oE '^#[0-9]+' "$dir/log" | tail -1 | tr -d '#')
  cov=$(grep -oE 'cov: [0-9]+' "$dir/log" | tail -1 | awk '{print $2}')
  corpus_now=$(find "$dir/corpus" -type f | wc -l)
  artifacts=$(find "$dir/artifacts" -type f | sort)

  if [[ $rc -eq 0 && -z "$artifacts" ]]; then
    printf '%-24s ok     %10s execs  cov %-5s corpus %d -> %d\n' "$t" "${execs:-?}" "${cov:-?}" "$seeds" "$corpus_now"
  else
    printf '%-24s CRASH  %10s execs  (exit %d)\n' "$t" "${execs:-?}" "$rc"
    failed+=("$t")
    keep=1
    echo "---- $t: report"
    grep -E -A 40 'ERROR: (Address|Leak|libFuzzer)|runtime error|property violated|deadly signal|timeout after|out-of-memory' \
      "$dir/log" | head -80
    for a in $artifacts; do
      echo "---- $t: crash input $a ($(stat -c %s "$a") bytes), hex:"
      od -An -v -tx1 "$a" | tr -d ' \n' | head -c 8192; echo
    done
  fi
done

if ((${#failed[@]})); then
  echo "== fuzz: FAILED: ${failed[*]}"
  exit 1
fi
echo "== fuzz: all ${#targets[@]} targets ran without crashes"
