#!/usr/bin/env bash
# Checks gantry on a machine with an NVIDIA GPU, in well under 5 minutes. That machine has no Rust
# toolchain: run scripts/build-device-check.sh first and bring target/device along. Prints what it finds, and
# writes it to $OUT/device-check.txt when OUT is set. Changes no GPU setting.
set -uo pipefail
cd "$(dirname "$0")/.."
bin=${GANTRY_BIN:-target/device/gantry}
tests=${GANTRY_NVML_TESTS:-target/device/nvml-tests}
out=${OUT:-/tmp}/device-check.txt
[ -x "$bin" ] || { echo "no $bin: run scripts/build-device-check.sh where Rust is, and bring target/device"; exit 2; }
ws=$(mktemp -d)
{
  echo "== host"; uname -a; date -u
  echo "== nvidia-smi -L"; nvidia-smi -L 2>&1 || echo "nvidia-smi failed"
  echo "== gantry --version"; "$bin" --version
  echo "== gantry gpu"; "$bin" gpu
  echo "== gantry gpu --json --once"; "$bin" gpu --json --once > "${OUT:-/tmp}/gpu.json" && echo "written: gpu.json"
  echo "== NVML-only tests, and gantry against nvidia-smi (tolerances in tests/nvml.rs)"
  if [ -x "$tests" ]; then GANTRY_BIN="$bin" "$tests" --ignored --test-threads=1 --nocapture; else echo "no $tests"; fi
  echo "== gantry init + where"; "$bin" init "$ws" && "$bin" --workspace "$ws" where
  echo "== gantry demo --no-open (store ingest on this machine)"
  /usr/bin/time -f "%e s, %M KiB max RSS" "$bin" demo --no-open "$ws/demo" 2>&1
  echo "== workbench GPU probe, read from the GPUs tab through a pseudo-terminal"
  if command -v python3 >/dev/null; then
    python3 - "$bin" "$ws/demo" <<'PY'
import os, pty, select, sys, time
bin, ws = sys.argv[1], sys.argv[2]
pid, fd = pty.fork()
if pid == 0:
    os.environ["TERM"] = "xterm-256color"
    os.execv(bin, [bin, "--workspace", ws])
buf = b""
def pump(t):
    global buf
    end = time.time() + t
    while time.time() < end:
        r, _, _ = select.select([fd], [], [], 0.1)
        if r:
            try: buf += os.read(fd, 65536)
            except OSError: return
pump(2); os.write(fd, b"3"); pump(2); os.write(fd, b"q"); pump(1)
text = buf.decode("utf-8", "replace")
for word in ["GPUs (", "No GPU data", "driver"]:
    print(f"{word!r} on screen: {word in text}")
os.waitpid(pid, 0)
PY
  fi
} 2>&1 | tee "$out"
