#!/usr/bin/env python3
"""Write fixtures/gpu/*.jsonl: GPU recordings in `gantry gpu --record`'s format, for the demo and
tests on machines without a GPU. They are made up (no GPU was at hand to record), from the cards'
published figures: memory, power limits, clocks, PCIe links. Deterministic. Each GPU carries
NVML's total-energy counter (mJ since the driver loaded, advanced by the power read over each
second) and when it was read, as `gantry gpu --record` writes them.
"""
import json
import math
import random
from pathlib import Path

OUT = Path(__file__).resolve().parent.parent / "fixtures" / "gpu"
GIB = 1 << 30

CARDS = {
    "h200": dict(name="NVIDIA H200", mem=141 * GIB, power=700, sm_max=1980, mem_clock=3201, gen=5, slowdown=87),
    "a100": dict(name="NVIDIA A100-SXM4-80GB", mem=80 * GIB, power=400, sm_max=1410, mem_clock=1593, gen=4, slowdown=92),
    "h100": dict(name="NVIDIA H100 80GB HBM3", mem=80 * GIB, power=700, sm_max=1980, mem_clock=2619, gen=5, slowdown=87),
}


def snapshot(card, n_gpus, t, rng, busy, energy):
    c = CARDS[card]
    gpus, procs = [], []
    for i in range(n_gpus):
        load = busy[i]
        util = 0 if load == 0 else max(0, min(100, int(load * 100 - 6 + 8 * math.sin(t / 7 + i) + rng.uniform(-3, 3))))
        power = 70 + (c["power"] - 90) * util / 100 + rng.uniform(-5, 5)
        used = int(c["mem"] * (0.02 + 0.85 * load))
        gpus.append({
            "index": i, "name": c["name"], "uuid": f"GPU-{card}-{i:02d}-made-up",
            "bus_id": f"00000000:{0x18 + 0x10 * i:02X}:00.0",
            "util": util, "mem_util": util // 2, "mem_used": used, "mem_total": c["mem"],
            "temp": int(32 + 40 * util / 100 + rng.uniform(-1, 1)), "temp_slowdown": c["slowdown"],
            "power": round(power, 1), "power_limit": float(c["power"]),
            "sm_clock": c["sm_max"] if util > 5 else 345, "sm_clock_max": c["sm_max"],
            "mem_clock": c["mem_clock"], "mem_clock_max": c["mem_clock"], "fan": None,
            "pcie_gen": c["gen"], "pcie_width": 16,
            "pcie_rx": int(util * 120 + rng.uniform(0, 500)), "pcie_tx": int(util * 40 + rng.uniform(0, 200)),
            "enc_util": 0, "dec_util": 0,
            "throttle": (["power cap"] if power > c["power"] * 0.95 else []) + ([] if util > 5 else ["idle"]),
            "ecc_uncorrected": 0, "mig": False, "persistence": True, "compute_mode": "Default",
        })
        # The counter advances by the mean of the last and this power over the second between.
        last = energy.get(i)
        if last is None:
            energy[i] = (9_000_000_000 + 1_000_000 * i, power)
        else:
            energy[i] = (last[0] + int((last[1] + power) / 2 * 1000), power)
        gpus[-1]["energy_mj"] = energy[i][0]
        gpus[-1]["read_us"] = (1_795_000_000_000 + t * 1000) * 1000
        if load > 0:
            procs.append({"pid": 41000 + i, "gpu": i, "mem_used": used - 600 * (1 << 20), "sm_util": util})
    return {"time_ms": 1_795_000_000_000 + t * 1000, "driver": "580.95.05", "cuda": "13.0", "gpus": gpus, "processes": procs}


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    for card, n, busy in [("h200", 1, [0.9]), ("a100", 2, [0.95, 0.0]), ("h100", 8, [0.95, 0.9, 0.92, 0.88, 0.5, 0.0, 0.97, 0.93])]:
        rng = random.Random(card)
        energy = {}
        with open(OUT / f"{card}-x{n}.made-up.jsonl", "w") as f:
            for t in range(60):
                f.write(json.dumps(snapshot(card, n, t, rng, busy, energy)) + "\n")


if __name__ == "__main__":
    main()
