"""Benchmark classification (issue 5 item 7): 10M records vs a bare polars exact join.

    python bench/bench_classify.py [--records 10000000] [--distinct 1000000] [--runs 3]

Generates its inputs with ``gen_classify.py`` into ``bench/out/`` unless they exist, then
times, each in a fresh child process (so peak RSS is the operation's own), the median of
``--runs`` runs of, in two modes:

* ``memory``: records read into memory first (not timed), result collected in memory;
* ``stream``: ``scan_parquet(records) -> ... -> sink_parquet`` (reading and writing timed),
  the way ``analyze`` runs on a records folder;

for two operations:

* ``exact join``: the records left-joined on ``src_ip`` with the inventory's ~50k
  addresses (class and resource): the floor the issue measures against;
* ``classify``: ``classify(records, inv, predictions, index=...)``: every class, via,
  resource, candidate VMs, service tag, region, confidence (the index is built once
  before timing, as ``watch`` would; its build time is printed apart).

Peak RSS is the child's ``ru_maxrss`` (inventory, index, records and the operation).
Goals (issue 5): classify <= 3x the exact join, peak RSS < 2 GB.
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


def child(kind: str, mode: str, records: Path, runs: int) -> None:
    """Run one measurement and print a JSON line: walls, index time, peak RSS."""
    sys.path.insert(0, str(ROOT))
    import polars as pl

    from analyze.classify import AddressIndex, classify
    from analyze.inventory import load
    from analyze.inventory.addresses import address_table
    from analyze.predict import predict

    t = time.perf_counter()
    inv = load([OUT / "inventory_synthetic.yaml", OUT / "ServiceTags_synthetic.json"])
    load_s = time.perf_counter() - t
    t = time.perf_counter()
    preds = predict(inv)
    predict_s = time.perf_counter() - t
    source: pl.LazyFrame = pl.read_parquet(records).lazy() if mode == "memory" else pl.scan_parquet(records)
    sink = OUT / f"bench_classify_{kind}.parquet"
    walls = []
    index_s = 0.0
    if kind == "exact":
        table = address_table(inv).select(
            pl.col("network").str.replace(r"/(32|128)$", "").alias("src_ip"), "class", "resource"
        ).unique("src_ip")
        plan = source.join(table.lazy(), on="src_ip", how="left")
    else:
        t = time.perf_counter()
        index = AddressIndex.build(inv, preds)
        index_s = time.perf_counter() - t
        plan = classify(source, inv, preds, index=index)
    rows = 0
    for _ in range(runs):
        t = time.perf_counter()
        if mode == "memory":
            out = plan.collect()
            rows = out.height
            del out
        else:
            plan.sink_parquet(sink)
        walls.append(time.perf_counter() - t)
    if mode == "stream":
        rows = pl.scan_parquet(sink).select(pl.len()).collect().item()
        if kind == "classify":
            counts = pl.scan_parquet(sink).group_by("class").len().sort("len", descending=True).collect()
            print(json.dumps({"classes": {str(k): v for k, v in counts.iter_rows()}}))
        sink.unlink()
    assert rows == pl.scan_parquet(records).select(pl.len()).collect().item()
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"kind": kind, "mode": mode, "walls": walls, "index_s": index_s, "load_s": load_s,
                      "predict_s": predict_s, "rss_mb": peak_mb}))  # fmt: skip


def measure(kind: str, mode: str, records: Path, runs: int) -> dict[str, object]:
    cmd = [sys.executable, __file__, "--child", kind, "--mode", mode, "--runs", str(runs), "--path", str(records),
           "--out", str(OUT)]
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
    ap.add_argument("--mode", choices=("memory", "stream"), default="memory")
    ap.add_argument("--path", type=Path)
    ap.add_argument("--out", type=Path, default=None, help="Where the generated inputs are (default bench/out).")
    a = ap.parse_args()
    global OUT
    OUT = a.out or OUT
    if a.child:
        child(a.child, a.mode, a.path, a.runs)
        return
    records = OUT / f"records_{a.records}.parquet"
    if not records.exists():
        print(f"generating {records.name} ...", file=sys.stderr)
        subprocess.run([sys.executable, str(ROOT / "bench" / "gen_classify.py"), "--records", str(a.records),
                        "--distinct", str(a.distinct), "--out", str(OUT)], check=True, cwd=ROOT)  # fmt: skip
    load = os.getloadavg()
    print(f"machine: {os.cpu_count()} CPUs, load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f} at start")
    results = {(k, m): measure(k, m, records, a.runs) for m in ("memory", "stream") for k in ("exact", "classify")}
    ours = results[("classify", "stream")]
    print(f"records: {a.records:,} ({a.distinct:,} distinct sources, 10% IPv6); inventory load "
          f"{ours['load_s']:.2f} s, predict {ours['predict_s']:.2f} s, index build {ours['index_s']:.2f} s")  # fmt: skip
    print(f"{'':20}{'median s':>10}{'min s':>8}{'peak RSS MB':>13}")
    for (kind, mode), r in results.items():
        walls = r["walls"]
        print(f"{kind + ' ' + mode:20}{statistics.median(walls):10.2f}{min(walls):8.2f}{r['rss_mb']:13.0f}")  # type: ignore[arg-type,type-var]
    print(f"classes: {ours.get('classes')}")
    for mode in ("memory", "stream"):
        e = statistics.median(results[("exact", mode)]["walls"])  # type: ignore[arg-type]
        c = statistics.median(results[("classify", mode)]["walls"])  # type: ignore[arg-type]
        best = min(results[("classify", mode)]["walls"]) / min(results[("exact", mode)]["walls"])  # type: ignore[arg-type,type-var,operator]
        rss = float(results[("classify", mode)]["rss_mb"])  # type: ignore[arg-type]
        print(f"{mode}: classify / exact join {c / e:.2f}x by medians, {best:.2f}x by minima "
              f"(goal <= {GOAL_RATIO:g}x: {'met' if c / e <= GOAL_RATIO else 'NOT met'}); "
              f"peak RSS {rss:.0f} MB (goal < {GOAL_RSS_MB} MB: {'met' if rss < GOAL_RSS_MB else 'NOT met'})")
    load = os.getloadavg()
    print(f"load average at end: {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}")


if __name__ == "__main__":
    main()
