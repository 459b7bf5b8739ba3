"""Benchmark: load bench_classify's inventory and predict it (issue 10, goal c: under 2 s).

    python bench/bench_inventory.py [--runs 3] [--out /tmp/bench_inventory]

Writes (once) the inventory of ``gen_classify.py`` -- 25,000 VMs / ~50,000 addresses in
native YAML and a synthetic Service Tags file of 3,001 tags / ~92,000 prefixes -- then,
in a fresh child process per run, times ``load()`` split into its parts (YAML parse, the
Service Tags file, the rest) and ``predict()``, and reports the child's peak RSS.  The best
run is printed, with the load average (the machine is shared: quote it with the figures).
By hand, not in CI.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def child(out: Path) -> None:
    """One measured run (in its own process, so RSS and caches start cold)."""
    t0 = time.perf_counter()
    from analyze.inventory import load
    from analyze.predict import predict

    t1 = time.perf_counter()
    inv = load([out / "inventory_synthetic.yaml", out / "ServiceTags_synthetic.json"])
    t2 = time.perf_counter()
    preds = predict(inv)
    t3 = time.perf_counter()
    tags_only = time.perf_counter()
    load([out / "ServiceTags_synthetic.json"])
    tags_only = time.perf_counter() - tags_only
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({
        "import_s": t1 - t0, "load_s": t2 - t1, "predict_s": t3 - t2, "tags_s": tags_only,
        "rss_mb": rss_mb, "vms": len(inv.vms), "prefixes": inv.service_tags.height,
        "predictions": len(preds),
    }))  # fmt: skip


def generate(out: Path) -> None:
    sys.path.insert(0, str(HERE))
    import numpy as np
    from gen_classify import inventory, service_tags

    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(1)
    service_tags(out / "ServiceTags_synthetic.json", rng)
    inventory(out / "inventory_synthetic.yaml")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--out", type=Path, default=Path("/tmp/bench_inventory"))
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        child(a.out)
        return
    if not (a.out / "inventory_synthetic.yaml").exists():
        generate(a.out)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE.parent), os.environ.get("PYTHONPATH", "")])}
    runs = []
    for _ in range(a.runs):
        done = subprocess.run(
            [sys.executable, __file__, "--child", "--out", str(a.out)],
            check=True, capture_output=True, text=True, env=env,
        )  # fmt: skip
        runs.append(json.loads(done.stdout.strip().splitlines()[-1]))
    best = min(runs, key=lambda r: r["load_s"] + r["predict_s"])
    total = best["load_s"] + best["predict_s"]
    load_avg = Path("/proc/loadavg").read_text().split()[:3] if Path("/proc/loadavg").exists() else ["?"]
    print(f"inventory: {best['vms']:,} VMs, {best['prefixes']:,} Service Tag prefixes; "
          f"{best['predictions']:,} predictions")  # fmt: skip
    print(f"best of {a.runs}: load {best['load_s']:.2f} s (Service Tags alone {best['tags_s']:.2f} s), "
          f"predict {best['predict_s']:.2f} s, total {total:.2f} s (goal < 2 s: "
          f"{'met' if total < 2 else 'not met'}); peak RSS {best['rss_mb']:.0f} MB")  # fmt: skip
    print("all runs (load + predict):", ", ".join(f"{r['load_s'] + r['predict_s']:.2f} s" for r in runs))
    print("load average:", " ".join(load_avg))


if __name__ == "__main__":
    main()
