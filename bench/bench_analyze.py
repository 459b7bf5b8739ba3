"""Benchmark ``analyze`` at incident volume (issue 10 item 6), by hand, not in CI.

    python bench/bench_analyze.py [--out /tmp/bench_analyze] [--lines 1000000] [--distinct 200000]
                                  [--records 10000000] [--sources 1000000] [--skip-b]

Every measurement is a fresh process (``/usr/bin/time``-style: wall time and the child's
peak RSS from ``wait4``), so peak RSS is the whole command's.

(a) A generated auth.log of a wide SSH brute force: ``--lines`` lines (two per connection:
    ``--lines / 2`` connections) from ``--distinct`` addresses outside Azure, 1,000 of them
    guessing hard (150 failures each within minutes), plus a few logins of the demo's VMs
    from their egress addresses.  ``egresslens analyze --inventory <demo> F -o DIR/`` against
    ``egresslens logs read F -o x.parquet``.  Goal: within 3x or under 20 s (the larger),
    at most 50 findings, peak RSS under 2 GB.
(b) bench_classify's records (``gen_classify.py``: ``--records`` rows from ``--sources``
    distinct addresses, 50k-address inventory, 3,001 tags / 92k prefixes):
    end-to-end ``analyze -o DIR/`` (goal under 60 s and 2 GB), and classification alone
    against a bare polars exact join, in memory and streaming, through bench_classify's
    own child (goal: within 2x).  Also printed: the inventory load + predict time (goal (c),
    issue 14's).

Generated inputs go under ``--out`` (default /tmp/bench_analyze), never into git.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

import numpy as np
import polars as pl

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "pcaps" / "demo"
INVENTORY = [DEMO / "inventory.yaml", DEMO / "ServiceTags_Public_lab.json"]
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def brute_force_log(path: Path, lines: int, distinct: int, seed: int = 10) -> None:
    """Write the wide brute force: two lines per connection, ``distinct`` source addresses."""
    rng = np.random.default_rng(seed)
    n = lines // 2
    heavy, per_heavy = max(1, distinct // 200), 150
    logins = 40  # a few VM logins: Test2VM (default SNAT) and lbvm (instance public IP)
    n_light = n - heavy * per_heavy - logins
    # Distinct addresses outside Azure and outside the lab inventory: 11.x.y.z .. 99.x.y.z.
    ints = rng.choice(np.arange(11 << 24, 100 << 24, 97, dtype=np.int64), size=distinct, replace=False)
    light = rng.integers(heavy, distinct, n_light)
    light[: distinct - heavy] = np.arange(heavy, distinct)  # every address appears
    src = np.concatenate([np.repeat(np.arange(heavy), per_heavy), light])
    t = np.concatenate([
        np.repeat(rng.integers(0, 86_400 * 2, heavy), per_heavy) + np.tile(np.arange(per_heavy) * 6, heavy),
        rng.integers(0, 86_400 * 2, n_light),
    ])  # fmt: skip
    df = pl.DataFrame({"i": ints[src], "t": t}).with_columns(
        pl.lit("root").alias("user"), pl.int_range(pl.len()).alias("pid")
    )
    vm = pl.DataFrame({
        "ip": ["203.0.113.129", "192.0.2.123"] * (logins // 2),
        "t": rng.integers(0, 86_400 * 2, logins), "pid": np.arange(n - logins, n),
    })  # fmt: skip
    ip = pl.concat_str([(pl.col("i") // (1 << s) % 256).cast(pl.String) for s in (24, 16, 8, 0)], separator=".")
    t0 = np.datetime64("2026-11-20T00:00:00")
    stamp = (pl.lit(t0) + pl.duration(seconds=pl.col("t"))).dt.strftime("%b %e %H:%M:%S")
    port = (pl.col("pid") * 7919 % 60000 + 1024).cast(pl.String)
    head = stamp + pl.lit(" web1 sshd[") + (pl.col("pid") + 1000).cast(pl.String) + pl.lit("]: ")
    failed = df.sort("t").select(
        pl.col("t"), pl.col("pid"),
        (head + "Failed password for root from " + ip + " port " + port + " ssh2").alias("a"),
        (head + "Connection closed by authenticating user root " + ip + " port " + port + " [preauth]").alias("b"),
    )  # fmt: skip
    ok = vm.select(
        pl.col("t"), pl.col("pid"),
        (head + "Accepted publickey for labuser from " + pl.col("ip") + " port " + port
         + " ssh2: ED25519 SHA256:Xy12Ab34Cd56Ef78Gh90").alias("a"),
        (head + "Disconnected from user labuser " + pl.col("ip") + " port " + port).alias("b"),
    )  # fmt: skip
    both = pl.concat([failed, ok]).sort("t", "pid")
    text = both.select(pl.concat_str(["a", "b"], separator="\n").alias("line"))
    text.write_csv(path, include_header=False, quote_style="never")
    os.utime(path, (t0.astype("datetime64[s]").astype(int) + 3 * 86_400,) * 2)  # year from mtime: 2026


def gnu_time(cmd: list[str]) -> tuple[float, float, str]:
    """Wall time and peak RSS of ``cmd`` through ``/usr/bin/time -f '%e %M'`` (exact per process)."""
    done = subprocess.run(["/usr/bin/time", "-f", "TIME %e %M", *cmd], capture_output=True, cwd=ROOT,
                          env=os.environ | {"PYTHONPATH": str(ROOT)})  # fmt: skip
    err = done.stderr.decode()
    if done.returncode not in (0, 1):
        raise SystemExit(f"failed ({done.returncode}): {' '.join(cmd)}\n{err[-2000:]}")
    line = [x for x in err.splitlines() if x.startswith("TIME ")][-1]
    _, wall, kb = line.split()
    return float(wall), int(kb) / 1024, err


def egresslens(*args: str) -> list[str]:
    return [sys.executable, "-m", "analyze", *args]


def load() -> str:
    a = os.getloadavg()
    return f"{a[0]:.2f} {a[1]:.2f} {a[2]:.2f}"


def bench_a(out: Path, lines: int, distinct: int) -> None:
    log = out / f"bruteforce_{lines}.log"
    if not log.exists():
        print(f"generating {log} ...", file=sys.stderr)
        brute_force_log(log, lines, distinct)
    inv = [a for p in INVENTORY for a in ("--inventory", str(p))]
    read_s, read_mb, _ = gnu_time(egresslens("logs", "read", str(log), "-o", str(out / "x.parquet"), "--force"))
    an_s, an_mb, _ = gnu_time(egresslens("analyze", *inv, "--allowlist", "web-app", str(log),
                                         "-o", f"{out / 'report_a'}/", "--force", "-q"))  # fmt: skip
    summary = json.loads((out / "report_a" / "summary.json").read_text())
    conns = pl.scan_parquet(out / "report_a" / "connections.parquet").select(pl.len()).collect().item()
    goal_s = max(3 * read_s, 20.0)
    print(f"(a) {log.name}: {lines:,} lines, {conns:,} connections, {summary['addresses']:,} addresses; "
          f"load {load()}")  # fmt: skip
    print(f"    logs read -o x.parquet   {read_s:7.2f} s  {read_mb:7.0f} MB peak RSS")
    print(f"    analyze -o DIR/          {an_s:7.2f} s  {an_mb:7.0f} MB peak RSS  ({an_s / read_s:.2f}x logs read)")
    print(f"    findings: {summary['incidents']} ({summary['by_severity']}); verdict: {summary['verdict'][:160]}")
    ok_time, ok_n, ok_rss = an_s <= goal_s, summary["incidents"] <= 50, an_mb < 2048
    print(f"    goal (a): time <= {goal_s:.1f} s {'met' if ok_time else 'NOT met'}; <= 50 findings "
          f"{'met' if ok_n else 'NOT met'}; RSS < 2 GB {'met' if ok_rss else 'NOT met'}")  # fmt: skip


def bench_b(out: Path, records: int, sources: int, runs: int) -> None:
    data = out / "classify"
    path = data / f"records_{records}.parquet"
    if not path.exists():
        print(f"generating {path} ...", file=sys.stderr)
        subprocess.run([sys.executable, str(ROOT / "bench" / "gen_classify.py"), "--records", str(records),
                        "--distinct", str(sources), "--out", str(data)], check=True, cwd=ROOT,
                       env=os.environ | {"PYTHONPATH": str(ROOT)})  # fmt: skip
    folder = data / "records"
    folder.mkdir(exist_ok=True)
    link = folder / path.name
    if not link.exists():
        link.symlink_to(path)
    inv = ["--inventory", str(data / "inventory_synthetic.yaml"), "--inventory", str(data / "ServiceTags_synthetic.json")]
    e2e_s, e2e_mb, _ = gnu_time(egresslens("analyze", *inv, str(folder), "-o", f"{out / 'report_b'}/", "--force", "-q"))
    summary = json.loads((out / "report_b" / "summary.json").read_text())
    print(f"(b) {records:,} records, {sources:,} distinct sources; load {load()}")
    print(f"    analyze -o DIR/ end to end {e2e_s:7.2f} s  {e2e_mb:7.0f} MB peak RSS; "
          f"{summary['incidents']} findings ({summary['by_severity']})")  # fmt: skip
    print(f"    goal (b) end to end: < 60 s {'met' if e2e_s < 60 else 'NOT met'}, < 2 GB "
          f"{'met' if e2e_mb < 2048 else 'NOT met'}")  # fmt: skip
    results = {}
    for mode in ("memory", "stream"):
        for kind in ("exact", "classify"):
            cmd = [sys.executable, str(ROOT / "bench" / "bench_classify.py"), "--child", kind, "--mode", mode,
                   "--runs", str(runs), "--path", str(path), "--out", str(data)]  # fmt: skip
            done = subprocess.run(cmd, capture_output=True, text=True, check=True, cwd=ROOT,
                                  env=os.environ | {"PYTHONPATH": str(ROOT)})  # fmt: skip
            r: dict[str, object] = {}
            for line in done.stdout.splitlines():
                r |= json.loads(line)
            results[(kind, mode)] = r
    c = results[("classify", "stream")]
    print(f"    inventory load {c['load_s']:.2f} s + predict {c['predict_s']:.2f} s (goal (c) < 2 s: "
          f"{'met' if float(c['load_s']) + float(c['predict_s']) < 2 else 'NOT met'}); index build {c['index_s']:.2f} s")  # type: ignore[arg-type]
    for mode in ("memory", "stream"):
        e = statistics.median(results[("exact", mode)]["walls"])  # type: ignore[arg-type]
        k = statistics.median(results[("classify", mode)]["walls"])  # type: ignore[arg-type]
        rss = float(results[("classify", mode)]["rss_mb"])  # type: ignore[arg-type]
        print(f"    {mode}: classify {k:.2f} s vs exact join {e:.2f} s = {k / e:.2f}x (goal <= 2x: "
              f"{'met' if k / e <= 2 else 'NOT met'}); classify peak RSS {rss:.0f} MB; load {load()}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("/tmp/bench_analyze"))
    ap.add_argument("--lines", type=int, default=1_000_000)
    ap.add_argument("--distinct", type=int, default=200_000)
    ap.add_argument("--records", type=int, default=10_000_000)
    ap.add_argument("--sources", type=int, default=1_000_000)
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--skip-a", action="store_true")
    ap.add_argument("--skip-b", action="store_true")
    a = ap.parse_args()
    a.out.mkdir(parents=True, exist_ok=True)
    print(f"machine: {os.cpu_count()} CPUs, load average {load()} at start")
    if not a.skip_a:
        bench_a(a.out, a.lines, a.distinct)
    if not a.skip_b:
        bench_b(a.out, a.records, a.sources, a.runs)
    print(f"load average at end: {load()}")


if __name__ == "__main__":
    main()
