#!/usr/bin/env bash
# Build what scripts/device-check.sh runs on a GPU machine that has no Rust toolchain: the release
# binary, and the NVML-only and CUDA-only test binaries, copied to target/device/.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release
mkdir -p target/device
cp target/release/gantry target/device/gantry
test_exe() {
  cargo test --release --no-run --test "$1" --message-format=json 2>/dev/null \
    | python3 -c 'import json,sys
name = sys.argv[1]
for l in sys.stdin:
    m = json.loads(l)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == name and m.get("executable"):
        print(m["executable"])' "$1"
}
cp "$(test_exe nvml)" target/device/nvml-tests
cp "$(test_exe cuda)" target/device/cuda-tests
# The device tool carries at most 64 MiB: strip the debug information.
strip target/device/gantry target/device/nvml-tests target/device/cuda-tests
ls -la target/device
echo "run on the GPU machine: scripts/device-check.sh (carry target/device)"
