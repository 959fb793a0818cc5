#!/usr/bin/env bash
# Fuzz every parser for SECONDS each (default 600), one after another, then minimize each corpus
# back into fuzz/corpus/<target>. Needs a nightly toolchain and cargo-fuzz
# (`cargo install cargo-fuzz`). Crashes land in fuzz/artifacts/<target>/.
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]
#
# A log line per target (target, seconds, runs, corpus size, crashes) is appended to
# fuzz/log.tsv, which docs/fuzzing.md sums up.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
secs="${1:-600}"
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  mapfile -t targets < <(cargo +nightly fuzz list)
fi
cargo +nightly fuzz build -O >/dev/null
for t in "${targets[@]}"; do
  work="$(mktemp -d)"
  log="$work.log"
  start=$(date +%s)
  # rss_limit: a parser that grows without bound fails; timeout: one input taking over 10 s fails.
  # rest_body keeps one store for the whole process: LeakSanitizer's check after each input
  # took it for a leak and scanned the heap every time.
  leaks=1
  [ "$t" = rest_body ] && leaks=0
  set +e
  cargo +nightly fuzz run -O "$t" "$work" "corpus/$t" -- \
    -max_total_time="$secs" -rss_limit_mb=2048 -timeout=10 -max_len=65536 \
    -detect_leaks="$leaks" -print_final_stats=1 >"$log" 2>&1
  rc=$?
  set -e
  took=$(( $(date +%s) - start ))
  runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo 0)
  crashes=$(ls "artifacts/$t" 2>/dev/null | wc -l)
  # Keep the smallest set of inputs that covers what the run reached (crashes stay apart).
  mkdir -p "$work.min"
  cargo +nightly fuzz run -O "$t" "$work.min" "corpus/$t" "$work" -- -merge=1 \
    >/dev/null 2>&1 || true
  if [ -n "$(ls "$work.min")" ]; then
    rm -f "corpus/$t"/*
    cp "$work.min"/* "corpus/$t"/
  fi
  n=$(ls "corpus/$t" | wc -l)
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$(date -u +%FT%TZ)" "$t" "$took" "$runs" "$n" "$crashes" "$rc" | tee -a log.tsv
  rm -rf "$work" "$work.log" "$work.min"
done
