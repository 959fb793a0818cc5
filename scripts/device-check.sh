#!/usr/bin/env bash
# Checks gantry on a machine with an NVIDIA GPU, in one call: the GPU part, then the bench part,
# each well under 5 minutes. That machine has no Rust toolchain: run scripts/build-device-check.sh
# first and bring target/device along. Changes no GPU setting.
#
# Prints what it finds and writes, under $OUT (else /tmp): device-check.txt (all of it),
# summary.md (one page to paste into a note), gpu.json, doctor.json, bench.json, torch.json,
# burn.json.
#
# PYTHON: the interpreter for the torch comparison [default: torch's own, /opt/torch/.venv/bin/
# python3 where it is, else the first python3 on PATH that imports torch]. Needs neither
# nvidia-smi nor /usr/bin/time: a missing tool is one line saying so. Without a GPU each part
# says "no GPU" and the script still ends with exit 0.
set -uo pipefail
cd "$(dirname "$0")/.."
dir=${OUT:-/tmp}
mkdir -p "$dir"
bin=${GANTRY_BIN:-target/device/gantry}
tests=${GANTRY_NVML_TESTS:-target/device/nvml-tests}
cuda_tests=${GANTRY_CUDA_TESTS:-target/device/cuda-tests}
[ -x "$bin" ] || {
    echo "no $bin: run scripts/build-device-check.sh where Rust is, and bring target/device"
    exit 2
}
have() { command -v "$1" >/dev/null 2>&1; }
ws=$(mktemp -d)
trap 'rm -rf "$ws"' EXIT

# torch's own interpreter, so the comparison uses the cuBLAS torch uses.
if [ -z "${PYTHON:-}" ]; then
    for p in /opt/torch/.venv/bin/python3 $(type -ap python3); do
        if [ -x "$p" ] && "$p" -c "import torch" >/dev/null 2>&1; then
            PYTHON=$p
            break
        fi
    done
fi
PYTHON=${PYTHON:-python3}

{
    echo "== host"
    uname -a
    date -u
    echo "== nvidia-smi -L"
    if have nvidia-smi; then nvidia-smi -L 2>&1 || echo "nvidia-smi failed"; else echo "nvidia-smi: not installed here"; fi
    echo "== gantry --version"
    "$bin" --version
    echo "== python for the torch comparison: $PYTHON"
    "$PYTHON" -c "import torch, sys; print('torch', torch.__version__, 'at', torch.__file__, '· CUDA', torch.version.cuda, '· GPU', torch.cuda.is_available())" 2>&1 |
        tail -1 || echo "no torch there"

    # cuBLAS, cuBLASLt and NVRTC from one directory: torch's wheels where torch has them. The
    # wheels ship versioned files only, so a folder of links gives the unversioned names too:
    # nothing else's libcublas.so can load beside torch's libcublasLt.
    libs=$("$PYTHON" - 2>/dev/null <<'PY'
import glob, importlib.util, os
spec = importlib.util.find_spec("torch")
if spec and spec.submodule_search_locations:
    site = os.path.dirname(list(spec.submodule_search_locations)[0])
    for d in sorted(glob.glob(os.path.join(site, "nvidia", "*", "lib"))) + [os.path.join(site, "torch", "lib")]:
        if glob.glob(os.path.join(d, "libcublas.so*")):
            print(d)
            break
PY
)
    if [ -n "$libs" ]; then
        mkdir -p "$ws/cuda-libs"
        for f in "$libs"/lib*.so*; do
            ln -sf "$f" "$ws/cuda-libs/$(basename "$f")"
            base=$(basename "$f" | sed 's/\.so\..*/.so/')
            [ -e "$ws/cuda-libs/$base" ] || ln -s "$f" "$ws/cuda-libs/$base"
        done
        # libnvrtc-builtins sits beside NVRTC in its own wheel.
        for f in "$libs"/../../cuda_nvrtc/lib/lib*.so* "$(dirname "$libs")"/*/lib/libnvrtc*.so*; do
            [ -e "$f" ] || continue
            ln -sf "$f" "$ws/cuda-libs/$(basename "$f")"
            base=$(basename "$f" | sed 's/\.so\..*/.so/')
            [ -e "$ws/cuda-libs/$base" ] || ln -s "$f" "$ws/cuda-libs/$base"
        done
        export LD_LIBRARY_PATH="$ws/cuda-libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
        export GANTRY_CUDA_LIBS=$libs
        echo "CUDA libraries from torch's wheels: $libs"
    else
        echo "no torch wheels' cuBLAS: the CUDA libraries are the system's"
    fi
    echo "LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}"

    echo "== gantry doctor (driver, GPUs, the CUDA libraries chosen: file and version)"
    "$bin" init "$ws" >/dev/null 2>&1
    "$bin" --workspace "$ws" doctor
    "$bin" --workspace "$ws" doctor --json >"$dir/doctor.json"

    echo "== gantry gpu"
    "$bin" gpu
    code=$?
    [ "$code" = 3 ] && echo "no GPU: gantry gpu exits 3 without an NVIDIA driver"
    "$bin" gpu --json --once >"$dir/gpu.json" && echo "written: gpu.json"

    echo "== NVML-only tests, and gantry against nvidia-smi (tolerances in tests/nvml.rs)"
    if [ ! -x "$tests" ]; then
        echo "no $tests (scripts/build-device-check.sh makes it)"
    elif ! have nvidia-smi; then
        echo "no GPU here (no nvidia-smi): the NVML tests need one"
    else
        GANTRY_BIN="$bin" "$tests" --ignored --test-threads=1 --nocapture
    fi

    echo "== CUDA-only tests (the CUDA backend: device, libraries, each benchmark checked)"
    if [ ! -x "$cuda_tests" ]; then
        echo "no $cuda_tests (scripts/build-device-check.sh makes it)"
    elif ! "$bin" gpu --once >/dev/null 2>&1; then
        echo "no GPU here: the CUDA tests need one"
    else
        timeout 150 "$cuda_tests" --ignored --test-threads=1 --nocapture
    fi

    echo "== gantry bench --json (every benchmark, default sizes; also stored as history)"
    timeout 240 "$bin" --workspace "$ws" bench --json --yes >"$dir/bench.json"
    code=$?
    echo "exit $code"
    [ "$code" = 3 ] && echo "no GPU: gantry bench exits 3 without CUDA"
    [ "$code" = 0 ] && "$bin" --workspace "$ws" bench --only launch --yes | head -20

    # Before the burn, on a cool GPU: torch on the same inputs as gantry (±[0.1, 1), the sign
    # at random), 10 products or 20 copies back to back between one pair of events.
    echo "== torch: bf16 GEMM 8192^3 and a 1 GiB device copy, N back to back per event pair"
    if "$PYTHON" -c "import torch; assert torch.cuda.is_available()" >/dev/null 2>&1; then
        "$PYTHON" - "$dir/torch.json" <<'PY'
import json, statistics, sys, torch
def timed(fn, per, reps=10, warm=3):
    for _ in range(warm): fn()
    torch.cuda.synchronize()
    out = []
    for _ in range(reps):
        s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        s.record()
        for _ in range(per): fn()
        e.record(); e.synchronize()
        out.append(s.elapsed_time(e) / 1e3 / per)
    return statistics.median(out)
def inputs(n):
    mag = torch.rand(n, n, device="cuda") * 0.9 + 0.1
    sign = torch.randint(0, 2, (n, n), device="cuda") * 2 - 1
    return (mag * sign).to(torch.bfloat16)
n = 8192
a, b = inputs(n), inputs(n)
c = torch.empty(n, n, device="cuda", dtype=torch.bfloat16)
gemm = 2 * n**3 / timed(lambda: torch.matmul(a, b, out=c), per=10) / 1e12
x = torch.ones(1 << 28, device="cuda", dtype=torch.float32)  # 1 GiB
y = torch.empty_like(x)
copy = 2 * x.numel() * 4 / timed(lambda: y.copy_(x), per=20) / 1e9  # read + written, as gantry counts
r = {"torch": torch.__version__, "gemm_bf16_8192_tflops": gemm, "copy_1gib_gbs": copy}
json.dump(r, open(sys.argv[1], "w"))
print(f"torch {torch.__version__}: bf16 matmul 8192^3 {gemm:.1f} TFLOP/s; copy_ 1 GiB {copy:.1f} GB/s (read+written)")
PY
    else
        echo "no GPU for torch here (or no torch with CUDA in $PYTHON): no torch comparison"
    fi

    echo "== gantry bench --burn 20 (bf16 8192 back to back: how the throughput holds, clocks, power)"
    timeout 60 "$bin" --workspace "$ws" bench --burn 20 --yes --json >"$dir/burn.json"
    code=$?
    echo "exit $code"
    if [ "$code" = 0 ]; then
        "$PYTHON" -c "import json,sys; d=json.load(open(sys.argv[1]))['devices'][0]['result']; print('start %.1f end %.1f held %.3f min %.1f TFLOP/s; %s; check %s' % (d['start'], d['end'], d['sustained'], d['min'], d.get('conditions'), d['check']))" "$dir/burn.json" 2>&1
    else
        echo "no GPU: no sustained load"
    fi

    echo "== gantry run --preflight=warn (bf16 GEMM, membw, h2d against the history bench just stored; NVML facts: PCIe link and max, ECC, retired memory, XIDs)"
    # The command lists the GPU's compute processes: gantry's own pid must not be among them
    # (the preflight's CUDA contexts are released before the command starts).
    echo "gantry's pid is the parent of the command; compute processes while the command runs:"
    timeout 90 "$bin" --workspace "$ws" run --preflight=warn --preflight-secs 45 --name preflight-check -- \
        sh -c 'echo "gantry pid: $PPID"; nvidia-smi --query-compute-apps=pid,process_name,used_memory --format=csv,noheader' 2>&1 | tail -14
    "$bin" --workspace "$ws" show preflight-check --json >"$dir/preflight.json" 2>/dev/null
    "$PYTHON" -c "import json,sys; p=json.load(open(sys.argv[1]))['preflight']; print('outcome', p['outcome'], '%.1f s' % p['seconds']); [print(' ', b['label'], b['value'], b['unit'], 'median', b['median'], 'past', b['past'], b.get('conditions')) for b in p['benchmarks']]; [print('  gpu', g['index'], 'pcie', g['pcie_gen'], g['pcie_width'], 'of', g['pcie_gen_max'], g['pcie_width_max'], 'ecc', g['ecc_uncorrected'], 'retired', g['retired_pages'], g['retired_pending'], 'xids', g['xids']) for g in p['gpus']]" "$dir/preflight.json" 2>&1 | head -20

    echo "== gantry demo --no-open (store ingest on this machine)"
    if [ -x /usr/bin/time ]; then
        /usr/bin/time -f "%e s, %M KiB max RSS" "$bin" demo --no-open "$ws/demo" 2>&1 | tail -1
    else
        echo "/usr/bin/time: not installed here; timed by the shell"
        start=$(date +%s.%N)
        "$bin" demo --no-open "$ws/demo" >/dev/null 2>&1
        echo "$(echo "$(date +%s.%N) - $start" | bc 2>/dev/null || echo '?') s"
    fi

    echo "== workbench GPU probe, read from the GPUs tab through a pseudo-terminal"
    "$PYTHON" - "$bin" "$ws/demo" <<'PY' 2>&1 || echo "no pseudo-terminal probe"
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

    echo "== summary ($dir/summary.md)"
    "$PYTHON" - "$dir" <<'PY' 2>&1 || echo "no summary: $PYTHON could not write it"
import json, os, sys
d = sys.argv[1]
def load(name):
    try:
        return json.load(open(os.path.join(d, name)))
    except Exception:
        return None
lines = ["# gantry device check", ""]
doc = load("doctor.json") or {}
nv = doc.get("nvidia", {})
if nv.get("error"):
    lines.append(f"- GPU: none ({nv['error']})")
else:
    for g in nv.get("gpus", []):
        lines.append(f"- GPU {g['index']}: {g['name']} {g['uuid']}; driver {nv.get('driver')}, CUDA {nv.get('cuda')}; NVML gives no {', '.join(g['unsupported']) or 'field missing'}")
for lib in doc.get("cuda", []):
    lines.append(f"- {lib['name']}: {lib.get('version') or '-'} {lib.get('path') or lib.get('error')}")
try:
    so_far = open(os.path.join(d, "device-check.txt")).read().splitlines()
except Exception:
    so_far = []
for l in so_far:
    # NVML against nvidia-smi (tests/nvml.rs), and each test binary's tally.
    if l.startswith("GPU ") and "memory total" in l or l.startswith("test result:"):
        lines.append(f"- {l.strip()}")
bench = load("bench.json")
torch = load("torch.json") or {}
if bench and bench.get("results"):
    lines += ["", "| benchmark | median | unit | % of peak | vs torch |", "| --- | --- | --- | --- | --- |"]
    against = {"gemm bf16 8192": torch.get("gemm_bf16_8192_tflops"), "membw copy-engine 1 GiB": torch.get("copy_1gib_gbs"), "membw sm-copy 1 GiB": torch.get("copy_1gib_gbs")}
    for r in bench["results"]:
        m = r["stats"]["median"]
        pct = r.get("pct_of_peak")
        t = against.get(r["label"])
        lines.append(f"| {r['label']} | {m:.4g} | {r.get('unit', '')} | {'' if pct is None else f'{pct:.1f}%'} | {'' if not t else f'{m / t:.3f}'} |")
else:
    lines.append("- bench: no results (no GPU, or it failed: see device-check.txt)")
if torch:
    lines.append(f"- torch {torch['torch']}: bf16 8192^3 {torch['gemm_bf16_8192_tflops']:.1f} TFLOP/s, 1 GiB copy {torch['copy_1gib_gbs']:.1f} GB/s")
open(os.path.join(d, "summary.md"), "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
PY
} 2>&1 | tee "$dir/device-check.txt"
exit 0
