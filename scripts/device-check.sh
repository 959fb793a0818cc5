#!/usr/bin/env bash
# Checks gantry on a machine with an NVIDIA GPU: the GPU part, then the bench part, each well under
# 5 minutes. That machine has no Rust
# toolchain: run scripts/build-device-check.sh first and bring target/device along. Prints what it finds, and
# writes it to $OUT/device-check.txt when OUT is set. Changes no GPU setting.
set -uo pipefail
cd "$(dirname "$0")/.."
bin=${GANTRY_BIN:-target/device/gantry}
tests=${GANTRY_NVML_TESTS:-target/device/nvml-tests}
cuda_tests=${GANTRY_CUDA_TESTS:-target/device/cuda-tests}
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
  # cuBLAS and NVRTC may come with PyTorch's wheels rather than a CUDA install: let them load.
  if command -v python3 >/dev/null; then
    extra=$(python3 - <<'PY' 2>/dev/null
import glob, os, site
dirs = set()
for root in site.getsitepackages() + [site.getusersitepackages()]:
    for pat in ("nvidia/*/lib", "torch/lib"):
        dirs.update(glob.glob(os.path.join(root, pat)))
# and a CUDA toolkit's own, when the loader is not told of it
for pat in ("/usr/local/cuda/lib64", "/usr/local/cuda/targets/*/lib", "/usr/local/cuda-*/lib64"):
    dirs.update(glob.glob(pat))
print(":".join(sorted(dirs)))
PY
)
    [ -n "$extra" ] && export LD_LIBRARY_PATH="${LD_LIBRARY_PATH:+$LD_LIBRARY_PATH:}$extra"
  fi
  echo "LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}"
  echo "== CUDA-only tests (the CUDA backend: device, libraries, each benchmark checked)"
  if [ -x "$cuda_tests" ]; then timeout 150 "$cuda_tests" --ignored --test-threads=1 --nocapture; else echo "no $cuda_tests"; fi
  echo "== gantry bench --json (every benchmark, default sizes; also stored as history)"
  timeout 240 "$bin" --workspace "$ws" bench --json --yes > "${OUT:-/tmp}/bench.json"; echo "exit $?"
  "$bin" --workspace "$ws" bench --only launch --yes | head -20
  echo "== gantry bench --burn 20 (bf16 8192 back to back: how the throughput holds, clocks, power)"
  timeout 60 "$bin" --workspace "$ws" bench --burn 20 --yes --json > "${OUT:-/tmp}/burn.json"; echo "exit $?"
  python3 -c "import json,sys; d=json.load(open(sys.argv[1]))['devices'][0]['result']; print('start %.1f end %.1f held %.3f min %.1f TFLOP/s; %s; check %s' % (d['start'], d['end'], d['sustained'], d['min'], d.get('conditions'), d['check']))" "${OUT:-/tmp}/burn.json" 2>&1
  echo "== gantry against torch: bf16 GEMM 8192^3 and device copy (targets: 0.95 or better)"
  if python3 -c "import torch; assert torch.cuda.is_available()" 2>/dev/null; then
    python3 - "${OUT:-/tmp}/bench.json" <<'PY'
import json, statistics, sys, torch
bench = json.load(open(sys.argv[1]))
def find(label):
    for r in bench["results"]:
        if r["label"] == label:
            return r["stats"]["median"]
def timed(fn, reps=20, warm=3):
    for _ in range(warm): fn()
    torch.cuda.synchronize()
    out = []
    for _ in range(reps):
        s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        s.record(); fn(); e.record(); e.synchronize()
        out.append(s.elapsed_time(e) / 1e3)
    return statistics.median(out)
n = 8192
a = torch.randn(n, n, device="cuda", dtype=torch.bfloat16)
b = torch.randn(n, n, device="cuda", dtype=torch.bfloat16)
t = timed(lambda: torch.matmul(a, b))
torch_gemm = 2 * n**3 / t / 1e12
x = torch.empty(1 << 28, device="cuda", dtype=torch.float32)  # 1 GiB
y = torch.empty_like(x)
t = timed(lambda: y.copy_(x))
torch_copy = 2 * x.numel() * 4 / t / 1e9  # read + written, as gantry counts
g_gemm = find("gemm bf16 8192")
g_ce, g_sm = find("membw copy-engine 1 GiB"), find("membw sm-copy 1 GiB")
print(f"torch {torch.__version__}: bf16 matmul 8192^3 {torch_gemm:.1f} TFLOP/s; copy_ 1 GiB {torch_copy:.1f} GB/s (read+written)")
print(f"gantry: gemm bf16 8192 {g_gemm} TFLOP/s; membw copy-engine {g_ce} GB/s; sm-copy {g_sm} GB/s")
if g_gemm: print(f"ratio bf16 GEMM gantry/torch: {g_gemm / torch_gemm:.3f} (target >= 0.95)")
if g_ce: print(f"ratio D2D copy-engine gantry/torch: {g_ce / torch_copy:.3f} (target >= 0.95)")
if g_sm: print(f"ratio D2D sm-copy gantry/torch: {g_sm / torch_copy:.3f}")
PY
  else
    echo "no PyTorch with CUDA here: no torch comparison"
  fi
  echo "== gantry demo --no-open (store ingest on this machine)"
  /usr/bin/time -f "%e s, %M KiB max RSS" "$bin" demo --no-open "$ws/demo" 2>&1
  echo "== workbench GPU probe, read from the GPUs tab through a pseudo-terminal"
  if command -v python3 >/dev/null; then
    python3 - "$bin" "$ws/demo" <<'PY'
import fcntl, os, pty, select, struct, sys, termios, time
bin, ws = sys.argv[1], sys.argv[2]
pid, fd = pty.fork()
if pid == 0:
    # A pseudo-terminal starts at 0x0: give it a size the tab can draw in.
    fcntl.ioctl(0, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 140, 0, 0))
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
for word in ["PCIe gen", "No GPU data", "Processes ("]:
    print(f"{word!r} on screen: {word in text}")
os.waitpid(pid, 0)
PY
  fi
} 2>&1 | tee "$out"
