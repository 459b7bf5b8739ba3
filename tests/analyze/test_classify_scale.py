"""Issue 7, resource bounds: many distinct source addresses classify in bounded memory."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_300k_distinct_addresses_each_get_one_class_in_bounded_memory() -> None:
    # Run in a child so its peak RSS (VmHWM, its own) is measured alone.
    code = f"""
import numpy as np, polars as pl
from analyze.classify import classify
from analyze.inventory import load
from analyze.predict import predict
from capture.schema import SCHEMA
inv = load([{str(ROOT / "pcaps/demo/inventory.yaml")!r}, {str(ROOT / "pcaps/demo/ServiceTags_Public_lab.json")!r}])
n = 300_000
ints = np.unique(np.random.default_rng(1).integers(1 << 24, 224 << 24, size=n + n // 10))[:n]
ips = pl.Series(ints)
text = (
    (pl.lit(ips) // (1 << 24)).cast(pl.String) + "." + ((pl.lit(ips) // (1 << 16)) % 256).cast(pl.String) + "."
    + ((pl.lit(ips) // 256) % 256).cast(pl.String) + "." + (pl.lit(ips) % 256).cast(pl.String)
)
records = pl.select(src_ip=text).with_columns(
    [pl.lit(None, dtype=t).alias(c) for c, t in SCHEMA.items() if c != "src_ip"]
).select(SCHEMA.names())
out = classify(records, inv, predict(inv)).collect()
assert out.height == n and out["class"].null_count() == 0
assert out.group_by("src_ip").agg(pl.col("class").n_unique()).get_column("class").max() == 1
print(next(l.split()[1] for l in open("/proc/self/status") if l.startswith("VmHWM")))
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-2000:]
    peak_mb = int(done.stdout.strip().splitlines()[-1]) // 1024
    assert peak_mb < 1500, f"peak RSS {peak_mb} MB for 300k distinct addresses"
