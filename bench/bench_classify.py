"""Benchmark classification (issue 5 item 7): 10M records vs a bare polars exact join.

    python bench/bench_classify.py [--records 10000000] [--distinct 1000000] [--runs 3]

Generates its inputs with ``gen_classify.py`` into ``bench/out/`` unless they exist, then
times, each in a fresh child process (so peak RSS is the operation's own), the median of
``--runs`` runs of:

* ``exact join``: the records (in memory) left-joined on ``src_ip`` with the inventory's
  ~50k addresses: the floor the issue measures against;
* ``classify``: ``classify(records, inv, predictions, index=...)`` collected: every class,
  via, resource, candidate VMs, service tag, region, confidence (the index is built once
  before timing, as ``watch`` would; its build time is printed apart).

Peak RSS is the child's ``ru_maxrss`` (records, inventory and the operation).  Goals:
classify <= 3x the exact join, peak RSS < 2 GB.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out"
GOAL_RATIO = 3.0
GOAL_RSS_MB = 2048


def child(kind: str, records: Path, runs: int) -> None:
    """Run one measurement and print a JSON line: walls, index time, peak RSS."""
    sys.path.insert(0, str(ROOT))
    import polars as pl

    from analyze.classify import AddressIndex, classify
    from analyze.inventory import load
    from analyze.predict import predict

    t = time.perf_counter()
    inv = load([OUT / "inventory_synthetic.yaml", OUT / "ServiceTags_synthetic.json"])
    load_s = time.perf_counter() - t
    t = time.perf_counter()
    preds = predict(inv)
    predict_s = time.perf_counter() - t
    df = pl.read_parquet(records)
    walls = []
    index_s = 0.0
    if kind == "exact":
        table = inv.address_table().select(
            pl.col("network").str.replace(r"/(32|128)$", "").alias("src_ip"), "class", "resource"
        ).unique("src_ip")
        for _ in range(runs):
            t = time.perf_counter()
            out = df.lazy().join(table.lazy(), on="src_ip", how="left").collect()
            walls.append(time.perf_counter() - t)
            assert out.height == df.height
    else:
        t = time.perf_counter()
        index = AddressIndex.build(inv, preds)
        index_s = time.perf_counter() - t
        for _ in range(runs):
            t = time.perf_counter()
            out = classify(df, inv, preds, index=index).collect()
            walls.append(time.perf_counter() - t)
            assert out.height == df.height
        counts = dict(out.group_by("class").len().sort("len", descending=True).iter_rows())
        print(json.dumps({"classes": {str(k): v for k, v in counts.items()}}))
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"kind": kind, "walls": walls, "index_s": index_s, "load_s": load_s,
                      "predict_s": predict_s, "rss_mb": peak_mb}))  # fmt: skip


def measure(kind: str, records: Path, runs: int) -> dict[str, object]:
    cmd = [sys.executable, __file__, "--child", kind, "--runs", str(runs), "--path", str(records)]
    done = subprocess.run(cmd, capture_output=True, text=True, check=True, cwd=ROOT)
    result: dict[str, object] = {}
    for line in done.stdout.splitlines():
        result |= json.loads(line)
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--records", type=int, default=10_000_000)
    ap.add_argument("--distinct", type=int, default=1_000_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--child")
    ap.add_argument("--path", type=Path)
    a = ap.parse_args()
    if a.child:
        child(a.child, a.path, a.runs)
        return
    records = OUT / f"records_{a.records}.parquet"
    if not records.exists():
        print(f"generating {records.name} ...", file=sys.stderr)
        subprocess.run([sys.executable, str(ROOT / "bench" / "gen_classify.py"), "--records", str(a.records),
                        "--distinct", str(a.distinct), "--out", str(OUT)], check=True, cwd=ROOT)  # fmt: skip
    load = os.getloadavg()
    print(f"machine: {os.cpu_count()} CPUs, load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f} at start")
    exact = measure("exact", records, a.runs)
    ours = measure("classify", records, a.runs)
    e = statistics.median(exact["walls"])  # type: ignore[arg-type]
    c = statistics.median(ours["walls"])  # type: ignore[arg-type]
    print(f"records: {a.records:,} ({a.distinct:,} distinct sources, 10% IPv6); inventory load "
          f"{ours['load_s']:.2f} s, predict {ours['predict_s']:.2f} s, index build {ours['index_s']:.2f} s")  # fmt: skip
    print(f"{'':12}{'median s':>10}{'min s':>8}{'peak RSS MB':>13}")
    for label, r, med in (("exact join", exact, e), ("classify", ours, c)):
        print(f"{label:12}{med:10.2f}{min(r['walls']):8.2f}{r['rss_mb']:13.0f}")  # type: ignore[call-overload,type-var]
    print(f"classes: {ours.get('classes')}")
    ratio = c / e
    print(f"ratio classify / exact join: {ratio:.2f}x (goal <= {GOAL_RATIO:g}x: {'met' if ratio <= GOAL_RATIO else 'NOT met'})")
    rss = float(ours["rss_mb"])  # type: ignore[arg-type]
    print(f"peak RSS classify: {rss:.0f} MB (goal < {GOAL_RSS_MB} MB: {'met' if rss < GOAL_RSS_MB else 'NOT met'})")
    load = os.getloadavg()
    print(f"load average at end: {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}")


if __name__ == "__main__":
    main()
