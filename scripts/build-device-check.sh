#!/usr/bin/env bash
# Build what scripts/device-check.sh runs on a GPU machine that has no Rust toolchain: the release
# binary, and the NVML-only test binary, copied to target/device/.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release
mkdir -p target/device
cp target/release/gantry target/device/gantry
exe=$(cargo test --release --no-run --test nvml --message-format=json 2>/dev/null \
  | python3 -c 'import json,sys
for l in sys.stdin:
    m = json.loads(l)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "nvml" and m.get("executable"):
        print(m["executable"])')
cp "$exe" target/device/nvml-tests
# The device tool carries at most 64 MiB: strip the debug information.
strip target/device/gantry target/device/nvml-tests
ls -la target/device
echo "run on the GPU machine: scripts/device-check.sh (carry target/device)"
