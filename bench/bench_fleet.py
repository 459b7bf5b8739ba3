"""Benchmark the fleet store (issues 11, 12): ingest throughput, analyze --store local / Ray.

    .venv/bin/python bench/bench_fleet.py [--work /tmp/el-fleet] [--observers 64] [--days 2]
        [--per-day 156000] [--packets 2000000] [--auth-lines 1000000] [--skip-ingest-bench]

1. Ingest vs read: the same capture (bench/gen_capture.py) and auth.log (bench/gen_logs.py)
   through ``capture read -o DIR/`` / ``logs read -o DIR/`` and ``ingest --store``
   (goal: ingest within 1.2x).
2. A store of OBSERVERS x DAYS x PER_DAY records (64 x 2 x 156k: about 20M), generated as
   records folders and ingested; then ``analyze --store`` with the local engine, and on
   Ray with 1 and 2 workers (start-up timed apart).  Wall time and the peak RSS of the
   whole process tree (driver, raylet, workers), sampled from /proc every 0.2 s.

By hand, not in CI: the machine is shared, so quote ``/proc/loadavg`` beside each figure.
Everything generated goes under ``--work`` (default /tmp/el-fleet).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import polars as pl

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from capture.schema import SCHEMA  # noqa: E402

DEMO = ROOT / "pcaps" / "demo"
INVENTORY = [str(DEMO / "inventory.yaml"), str(DEMO / "ServiceTags_Public_lab.json")]
PY = sys.executable
ENV = {**os.environ, "PYTHONPATH": str(ROOT), "RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "disabled"}


def loadavg() -> str:
    return Path("/proc/loadavg").read_text().split(" ", 3)[:3].__str__().replace("'", "")


def _tree_rss(pid: int) -> tuple[int, int]:
    """RSS in bytes of ``pid`` and all its descendants, and of the largest one of them."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            stat = (d / "stat").read_text()
            fields = stat[stat.rindex(")") + 2:].split()
            children.setdefault(int(fields[1]), []).append(int(d.name))
            rss[int(d.name)] = int(fields[21]) * os.sysconf("SC_PAGE_SIZE")
        except (OSError, ValueError):
            continue
    total, largest, todo = 0, 0, [pid]
    while todo:
        p = todo.pop()
        total += rss.get(p, 0)
        largest = max(largest, rss.get(p, 0))
        todo.extend(children.get(p, []))
    return total, largest


def measure(label: str, cmd: list[str]) -> tuple[float, float, str]:
    """Run ``cmd``; wall seconds, peak tree RSS in MB, its stdout."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    peak = one = 0
    stop = threading.Event()

    def sample() -> None:
        nonlocal peak, one
        while not stop.is_set():
            tree, largest = _tree_rss(proc.pid)
            peak, one = max(peak, tree), max(one, largest)
            stop.wait(0.2)

    t = threading.Thread(target=sample, daemon=True)
    t.start()
    out, err = proc.communicate()
    wall = time.perf_counter() - start
    stop.set()
    t.join()
    if proc.returncode != 0:
        raise SystemExit(f"{label}: exit {proc.returncode}\n{err[-2000:]}")
    print(f"  {label:<30} {wall:8.2f} s  peak RSS tree {peak / 2**20:6.0f} MB, "
          f"largest process {one / 2**20:6.0f} MB  load {loadavg()}", flush=True)  # fmt: skip
    return wall, peak / 2**20, out


def egresslens(*args: str) -> list[str]:
    return [PY, "-m", "analyze", *args]


# --- 1. ingest vs read ----------------------------------------------------------------


def bench_ingest(work: Path, packets: int, auth_lines: int) -> None:
    sys.path.insert(0, str(ROOT / "bench"))
    import gen_capture
    import gen_logs

    pcap, log = work / "bench.pcap", work / "auth.log"
    if not pcap.exists():
        gen_capture.generate(pcap, packets)
    if not log.exists():
        gen_logs.auth_log(log, auth_lines)
    print(f"1. ingest vs read ({packets:,} packets, {auth_lines:,} auth.log lines)")
    for what, src, read in (("capture", pcap, ["capture", "read"]), ("logs", log, ["logs", "read"])):
        out, store = work / f"read-{what}", work / f"ingest-{what}"
        shutil.rmtree(out, ignore_errors=True)
        shutil.rmtree(store, ignore_errors=True)
        r, _, _ = measure(f"{' '.join(read)} -o DIR/", egresslens(*read, str(src), "-o", f"{out}/"))
        i, _, _ = measure("ingest --store", egresslens("ingest", str(src), "--store", str(store), "--observer", "b1"))
        print(f"  ingest / read = {i / r:.2f} (goal <= 1.2)")


# --- 2. the fleet store ----------------------------------------------------------------


def _day_records(obs: int, day: int, n: int, rng: np.random.Generator) -> pl.DataFrame:
    """One observer-day: captured connections, a third of the SSH ones logged by sshd too."""
    pool = pl.Series(
        ["203.0.113.129", "192.0.2.123", "203.0.113.55"]
        + [f"198.51.100.{i}" for i in range(1, 255)] + [f"20.{i // 250}.{i % 250}.7" for i in range(2000)]
    )  # fmt: skip
    t0 = np.datetime64("2026-11-20T00:00:00", "us") + np.timedelta64(day, "D")
    ts = np.sort(t0 + rng.integers(0, 86_400_000_000, n).astype("timedelta64[us]"))
    ssh = rng.random(n) < 0.5
    caps = pl.DataFrame(
        {
            "conn_id": pl.Series(np.arange(n)).cast(pl.String).str.pad_start(8, "0"),
            "ts": ts,
            "src_ip": pool.gather(pl.Series(rng.integers(0, len(pool), n))),
            "src_port": (1024 + (np.arange(n) * 7 + obs) % 64000).astype(np.uint16),
            "dst_port": np.where(ssh, 22, 443).astype(np.uint16),
        }
    ).with_columns(
        conn_id=pl.concat_str(pl.lit(f"C{obs:03d}{day}-"), "conn_id"),
        observer=pl.lit(f"host{obs:03d}"),
        evidence=pl.lit(["pcap"]),
        dst_ip=pl.lit("10.0.0.4"),
        proto=pl.lit("tcp"),
        service=pl.when(pl.col("dst_port") == 22).then(pl.lit("ssh")).otherwise(pl.lit("https")),
        state=pl.lit("closed"),
        duration=pl.lit(2_000_000).cast(pl.Duration("us")),
        orig_pkts=pl.lit(12),
        resp_pkts=pl.lit(10),
        origin=pl.concat_list(pl.concat_str(pl.lit("cap.pcap#"), pl.int_range(pl.len()).cast(pl.String))),
    )
    logged = caps.filter((pl.col("service") == "ssh") & (pl.int_range(pl.len()) % 3 == 0)).with_columns(
        conn_id=pl.concat_str(pl.lit("authlog:"), "conn_id"),
        ts=pl.col("ts") + pl.duration(milliseconds=30),
        evidence=pl.lit(["authlog"]),
        ssh_user=pl.lit("azureuser"),
        # Ten guessers fail; everybody else gets in.
        ssh_auth=pl.when(pl.col("src_ip").is_in([f"198.51.100.{i}" for i in range(1, 11)]))
        .then(pl.lit("failed"))
        .otherwise(pl.lit("accepted")),
        origin=pl.concat_list(pl.concat_str(pl.lit("auth.log:"), pl.int_range(pl.len()).cast(pl.String))),
        duration=pl.lit(None, pl.Duration("us")),
        orig_pkts=pl.lit(None),
        resp_pkts=pl.lit(None),
    )
    df = pl.concat([caps, logged], how="diagonal_relaxed")
    return df.select(
        pl.col(c).cast(t) if c in df.columns else pl.lit(None, t).alias(c) for c, t in SCHEMA.items()
    ).sort("ts")


def make_store(work: Path, observers: int, days: int, per_day: int) -> Path:
    from analyze.store import Store, ingest

    store = work / f"store-{observers}x{days}x{per_day}"
    if (store / "_manifest").exists():
        return store
    ev = work / "records"
    rng = np.random.default_rng(1)
    start = time.perf_counter()
    st = Store.open(str(store))
    total = 0
    for o in range(observers):
        folder = ev / f"host{o:03d}"
        folder.mkdir(parents=True, exist_ok=True)
        for d in range(days):
            df = _day_records(o, d, per_day, rng)
            total += df.height
            df.write_parquet(folder / f"records-{d}.parquet")
        ingest([str(folder)], st, observer=f"host{o:03d}")
        shutil.rmtree(folder)
    print(f"  generated and ingested {total:,} records in {time.perf_counter() - start:.1f} s -> {store}")
    return store


_DRIVER = """
import json, sys, time
t0 = time.perf_counter()
from analyze.fleet import OBJECT_STORE_BYTES, TASK_ENV, StoreRun, analyze_store
n = int(sys.argv[2])
if n:
    import ray
    ray.init(num_cpus=n, include_dashboard=False, object_store_memory=OBJECT_STORE_BYTES,
             runtime_env={"env_vars": dict(TASK_ENV)}, log_to_driver=False)
t1 = time.perf_counter()
stats = StoreRun()
a = analyze_store(sys.argv[1], sys.argv[3:], engine="ray" if n else "local", stats=stats)
t2 = time.perf_counter()
if n:
    ray.shutdown()
print(json.dumps({"startup": t1 - t0, "analyze": t2 - t1, "rows": a.connections.height,
                  "workers": len(stats.pids), "findings": len(a.findings)}))
"""


def bench_analyze(store: Path, cli: bool) -> None:
    print(f"2. analyze --store {store.name} (in-process drivers; the report is not rendered)")
    results = {}
    for n in (0, 1, 2):
        label = f"ray, {n} worker(s)" if n else "local engine"
        wall, _, out = measure(label, [PY, "-c", _DRIVER, str(store), str(n), *INVENTORY])
        doc = json.loads(out.strip().splitlines()[-1])
        results[n] = doc
        print(f"    start-up {doc['startup']:.1f} s, analyze {doc['analyze']:.1f} s, {doc['rows']:,} rows, "
              f"{doc['workers']} worker processes, {doc['findings']} findings")  # fmt: skip
    print(f"  ray 1 / 2 workers (analyze only) = {results[1]['analyze'] / results[2]['analyze']:.2f} (goal >= 1.6)")
    print(f"  local / ray 2 workers (analyze only) = {results[0]['analyze'] / results[2]['analyze']:.2f}")
    if cli:
        inv = [a for src in INVENTORY for a in ("--inventory", src)]
        measure("CLI analyze --store -o json", egresslens("analyze", "--store", str(store), *inv,
                                                          "-o", str(store.parent / "report.json"), "--force"))  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", type=Path, default=Path("/tmp/el-fleet"))
    ap.add_argument("--observers", type=int, default=64)
    ap.add_argument("--days", type=int, default=2)
    ap.add_argument("--per-day", type=int, default=156_000)
    ap.add_argument("--packets", type=int, default=2_000_000)
    ap.add_argument("--auth-lines", type=int, default=1_000_000)
    ap.add_argument("--skip-ingest-bench", action="store_true")
    ap.add_argument("--cli", action="store_true", help="Also time the CLI with its JSON report.")
    args = ap.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    print(f"load {loadavg()}, {os.cpu_count()} CPUs")
    if not args.skip_ingest_bench:
        bench_ingest(args.work, args.packets, args.auth_lines)
    bench_analyze(make_store(args.work, args.observers, args.days, args.per_day), args.cli)


if __name__ == "__main__":
    main()
