"""Generate the inputs of bench_classify.py: records, an inventory and a Service Tags file.

    python bench/gen_classify.py [--records 10000000] [--distinct 1000000] [--out bench/out]

* ``ServiceTags_synthetic.json``: the real Public file's size and nesting: 60 regions;
  ``AzureCloud`` lists every regional block and each ``AzureCloud.<region>`` lists its own
  (the same prefixes twice, as the real file does); about 2,900 ``Service.<region>`` tags
  hold more specific prefixes inside their region's blocks.  About 92,000 prefixes, a
  quarter IPv6.
* ``inventory_synthetic.yaml``: 25,000 VMs, each with a private address, 24,990 with an
  instance public IP, 10 in a Basic LB pool without rules (default SNAT): about 50,000
  inventory addresses.  (Every default-SNAT-candidate row lists those VMs in
  ``candidate_vms``, so that list's length multiplies the output size: 1,000 default SNAT
  VMs with unknown regions would mean 1,000 names on each of 6M rows.)
* ``records_<N>.parquet``: N connection records in ``SCHEMA`` from ``--distinct`` source
  addresses (10 % IPv6): 5 % inventory addresses, 60 % inside tagged ranges, the rest
  outside Azure.

Deterministic (numpy seed 1).
"""

from __future__ import annotations

import argparse
import ipaddress
import json
from pathlib import Path

import numpy as np
import polars as pl

from capture.schema import SCHEMA

REGIONS = 60
SERVICES = 49  # service tags per region -> 60 * 49 = 2,940 tags (+ 61 AzureCloud ones)
V4_BLOCKS_PER_REGION = 96  # /16 .. /20 regional blocks (listed twice: AzureCloud + region)
V6_BLOCKS_PER_REGION = 32
SERVICE_PREFIXES = 26  # per service tag, inside the region's blocks


def _region(i: int) -> str:
    return f"region{i:02d}"


def service_tags(path: Path, rng: np.random.Generator) -> tuple[list[str], list[str]]:
    """Write the Service Tags file; return the regional v4 and v6 blocks (for records)."""
    values = []
    all_v4: list[str] = []
    all_v6: list[str] = []
    per_region = {}
    base4 = int(ipaddress.IPv4Address("20.0.0.0"))
    for r in range(REGIONS):
        v4 = []
        for b in range(V4_BLOCKS_PER_REGION):
            start = base4 + ((r * V4_BLOCKS_PER_REGION + b) << 16)
            plen = int(rng.integers(16, 21))
            v4.append(f"{ipaddress.IPv4Address(start)}/{plen}")
        v6 = [f"2603:{0x1000 + r:x}:{b:x}::/48" for b in range(V6_BLOCKS_PER_REGION)]
        per_region[r] = (v4, v6)
        all_v4 += v4
        all_v6 += v6
        values.append(_tag(f"AzureCloud.{_region(r)}", _region(r), "", v4 + v6))
    values.insert(0, _tag("AzureCloud", "", "", all_v4 + all_v6))
    for r in range(REGIONS):
        v4, v6 = per_region[r]
        for s in range(SERVICES):
            prefixes = []
            for _ in range(SERVICE_PREFIXES):
                if rng.random() < 0.25:
                    block = ipaddress.ip_network(v6[int(rng.integers(len(v6)))])
                    sub = int(rng.integers(0, 1 << 16))
                    prefixes.append(f"{block.network_address + (sub << 64)}/64")
                else:
                    block = ipaddress.ip_network(v4[int(rng.integers(len(v4)))])
                    plen = int(rng.integers(24, 29))
                    offset = int(rng.integers(0, block.num_addresses >> (32 - plen))) << (32 - plen)
                    prefixes.append(f"{block.network_address + offset}/{plen}")
            values.append(_tag(f"Service{s:02d}.{_region(r)}", _region(r), f"Service{s:02d}", prefixes))
    path.write_text(json.dumps({"changeNumber": 1, "cloud": "Public", "values": values}))
    return all_v4, all_v6


def _tag(name: str, region: str, service: str, prefixes: list[str]) -> dict[str, object]:
    return {
        "name": name, "id": name,
        "properties": {"changeNumber": 1, "region": region, "regionId": 0, "platform": "Azure",
                       "systemService": service, "addressPrefixes": prefixes, "networkFeatures": ["NSG"]},
    }  # fmt: skip


def inventory(path: Path, n_vms: int = 25_000, n_default: int = 10) -> list[str]:
    """Write the native YAML inventory; return its addresses."""
    lines = [
        "vnets:",
        "  - name: vnet1",
        "    address_space: [10.0.0.0/8]",
        "    subnets:",
        "      - {name: app, prefix: 10.0.0.0/9}",
        "load_balancers:",
        "  - name: mylb",
        "    sku: Basic",
        "    frontends: [{name: fe, public_ip: 52.0.0.1}]",
        "    pools: [{name: pool, members: [" + ", ".join(f"vm{i}" for i in range(n_default)) + "]}]",
        "vms:",
    ]
    addresses = ["52.0.0.1"]
    for i in range(n_vms):
        private = f"10.{i >> 16 & 127}.{i >> 8 & 255}.{i & 255}"
        addresses.append(private)
        if i < n_default:
            lines.append(f"  - {{name: vm{i}, private_ip: {private}, subnet: vnet1/app}}")
        else:
            public = f"52.{1 + (i >> 16)}.{i >> 8 & 255}.{i & 255}"
            addresses.append(public)
            lines.append(f"  - {{name: vm{i}, private_ip: {private}, subnet: vnet1/app, public_ip: {public}}}")
    path.write_text("\n".join(lines) + "\n")
    return addresses


def records(path: Path, n: int, distinct: int, own: list[str], v4_blocks: list[str], v6_blocks: list[str],
            rng: np.random.Generator) -> None:  # fmt: skip
    """Write ``n`` records drawn from ``distinct`` source addresses."""
    n6 = distinct // 10
    n4 = distinct - n6
    n_own = min(len(own), distinct // 20)
    n_tag4 = int(n4 * 0.6)
    starts = np.array([int(ipaddress.ip_network(b).network_address) for b in v4_blocks], dtype=np.uint64)
    tag4 = starts[rng.integers(0, len(starts), n_tag4)] + rng.integers(0, 1 << 12, n_tag4).astype(np.uint64)
    ext4 = rng.integers(1 << 24, 19 << 24, n4 - n_tag4 - n_own).astype(np.uint64)  # 1.x - 18.x: not Azure here
    v4 = pl.Series(np.concatenate([tag4, ext4])).cast(pl.UInt64)
    v4_text = pl.DataFrame({"x": v4}).select(
        pl.concat_str([(pl.col("x") // (1 << s) % 256).cast(pl.String) for s in (24, 16, 8, 0)], separator=".")
    ).to_series()
    n_tag6 = int(n6 * 0.6)
    blocks6 = [b.split("::")[0] for b in v6_blocks]
    pick = rng.integers(0, len(blocks6), n6)
    host = rng.integers(1, 1 << 16, (n6, 2))
    v6_text = [
        f"{blocks6[pick[i]]}::{host[i, 0]:x}:{host[i, 1]:x}" if i < n_tag6 else f"2001:db8:{host[i, 0]:x}::{host[i, 1]:x}"
        for i in range(n6)
    ]
    pool = pl.concat([pl.Series(own[:n_own]), v4_text, pl.Series(v6_text)]).unique(maintain_order=True)
    idx = pl.Series(rng.integers(0, len(pool), n))
    t0 = np.datetime64("2026-03-07T00:00:00", "us")
    df = pl.DataFrame(
        {
            "conn_id": None,
            "ts": np.sort(t0 + rng.integers(0, 86_400_000_000, n).astype("timedelta64[us]")),
            "observer": "web1",
            "evidence": None,
            "src_ip": pool.gather(idx),
            "src_port": rng.integers(1024, 65535, n).astype(np.uint16),
            "dst_ip": "10.0.0.4",
            "dst_port": np.where(rng.random(n) < 0.5, 22, 443).astype(np.uint16),
        }
    ).with_columns(
        pl.lit("tcp").alias("proto"),
        pl.when(pl.col("dst_port") == 22).then(pl.lit("ssh")).otherwise(pl.lit("https")).alias("service"),
        pl.lit("closed").alias("state"),
        pl.lit(1_000_000).cast(pl.Duration("us")).alias("duration"),
    )
    df = df.select(
        pl.col(c).cast(dtype) if c in df.columns else pl.lit(None, dtype).alias(c) for c, dtype in SCHEMA.items()
    )
    df.write_parquet(path)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--records", type=int, default=10_000_000)
    ap.add_argument("--distinct", type=int, default=1_000_000)
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "out")
    a = ap.parse_args()
    a.out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(1)
    v4, v6 = service_tags(a.out / "ServiceTags_synthetic.json", rng)
    own = inventory(a.out / "inventory_synthetic.yaml")
    records(a.out / f"records_{a.records}.parquet", a.records, a.distinct, own, v4, v6, rng)


if __name__ == "__main__":
    main()
