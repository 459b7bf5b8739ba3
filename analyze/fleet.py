"""``analyze --store``: the analysis mapped over a store's partitions, locally or on Ray.

One code path: ``analyze_partition`` (read one observer's records, correlate them, classify
them) is what the local engine calls for each observer in turn and what each Ray task runs;
the driver then reduces the partitions' rows into the findings and the ``Analysis`` with
``analyze.pipeline.finish``, exactly as ``analyze`` on files does.

Ray is optional (``pip install 'egresslens[fleet]'``) and imported only for ``--engine ray``.
"""

from __future__ import annotations

import datetime as dt
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

import polars as pl

from analyze.classify import CLASSIFIED_SCHEMA, AddressIndex
from analyze.inventory import Allowlist, Inventory, load
from analyze.pipeline import Analysis, _attributions, classify_partition, finish, resolve_allowlist
from analyze.predict import Prediction, predict
from analyze.store import Partition, Store, partitions, read_partition
from capture.errors import UsageError

Engine = Literal["local", "ray"]
"""Where the partitions are analyzed."""

RAY_ENV: Final[Mapping[str, str]] = {
    "RAY_USAGE_STATS_ENABLED": "0",
    # Ray 2.60 otherwise writes an auth token on a local cluster's first start.
    "RAY_AUTH_MODE": "disabled",
}
"""Environment of the driver for a local Ray cluster (set before ``ray.init``)."""
TASK_ENV: Final[Mapping[str, str]] = {"POLARS_MAX_THREADS": "1"}
"""Environment of each Ray task: one task per CPU, so one polars thread per task."""
OBJECT_STORE_BYTES: Final = 512 * 1024 * 1024
"""Object store of a local Ray cluster: partitions' classified rows pass through it."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Context:
    """What every partition needs, broadcast once (``ray.put``) on Ray."""

    inventory: Inventory
    predictions: tuple[Prediction, ...]
    allowlist: Allowlist | None
    index: AddressIndex | None = None
    """The inventory's address index, built once on the driver."""
    since: dt.datetime | None = None
    until: dt.datetime | None = None
    vm: str | None = None
    src: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class PartitionResult:
    """What one partition gives the driver."""

    observer: str
    rows: pl.DataFrame
    """Classified rows (``CLASSIFIED_SCHEMA`` + ``allowed``) in the window."""
    records: int
    """Records read (after one row per connection)."""
    files: int
    """Parquet parts read."""
    clock_offset: dt.timedelta | None
    note: str
    pid: int
    """The process that analyzed it (tests check Ray spread the work)."""


def analyze_partition(store: Store, part: Partition, ctx: Context) -> PartitionResult:
    """Read, correlate (within the observer) and classify one observer's partition."""
    records = read_partition(store, part, since=ctx.since, until=ctx.until)
    rows, merged = classify_partition(
        records, ctx.inventory, ctx.predictions, ctx.allowlist,
        since=ctx.since, until=ctx.until, vm=ctx.vm, src=ctx.src, index=ctx.index,
    )  # fmt: skip
    return PartitionResult(
        observer=part.observer, rows=rows, records=records.height, files=len(part.parts),
        clock_offset=merged.clock_offset, note=f"{part.observer}: {merged.note}", pid=os.getpid(),
    )  # fmt: skip


@dataclass(slots=True)
class StoreRun:
    """What ``analyze_store`` measured besides the analysis (for tests and progress)."""

    partitions: int = 0
    files_read: int = 0
    pids: frozenset[int] = frozenset()
    offsets: dict[str, dt.timedelta | None] | None = None


def analyze_store(
    url: str,
    inventory: Sequence[str],
    *,
    allowlist: str | None = None,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    vm: str | None = None,
    src: str | None = None,
    hosts: Sequence[str] | None = None,
    from_vm: Mapping[str, str] | None = None,
    engine: Engine = "local",
    ray_address: str | None = None,
    store_options: Mapping[str, str] | None = None,
    progress: Callable[[int, int], None] | None = None,
    stats: StoreRun | None = None,
) -> Analysis:
    """Analyze a store as ``analyze`` analyzes files.

    Args:
        url: the store (local folder, ``abfs://`` / ``az://``).
        inventory, allowlist, since, until, vm, src, from_vm: as for ``pipeline.run``.
        hosts: only these observers (prunes partitions).
        engine: ``local`` (this process, one observer at a time) or ``ray``.
        ray_address: attach to this Ray cluster (default: start a local one for the run).
        store_options: polars ``storage_options`` (default: from the environment).
        progress: called with (partitions done, total) as partitions finish.
        stats: filled with what was read.

    Raises:
        InputError, InventoryError, UsageError: bad input, one line naming where.
    """
    store = Store.open(url, store_options)
    if engine == "ray" and ray_address and not store.remote:
        raise UsageError(
            f"--store {url}: a local folder with --ray-address: the cluster's workers cannot "
            "read it; use an abfs:// store, or no --ray-address for a local cluster"
        )
    inv = load(inventory)
    predictions = predict(inv)
    allow = resolve_allowlist(inv, allowlist)
    parts, manifests = partitions(store, hosts=hosts, since=since, until=until)
    notes = list(inv.warnings)
    if not manifests:
        notes.append(f"{url}: the store holds no evidence" + (f" of {', '.join(hosts)}" if hosts else ""))
    ctx = Context(
        inventory=inv, predictions=tuple(predictions), allowlist=allow,
        index=AddressIndex.build(inv, predictions), since=since, until=until, vm=vm, src=src,
    )  # fmt: skip
    run = _run_ray if engine == "ray" else _run_local
    results = run(store, parts, ctx, progress, ray_address)
    empty = pl.DataFrame(schema=CLASSIFIED_SCHEMA).with_columns(allowed=pl.lit(None, pl.Boolean))
    rows = pl.concat([r.rows for r in results], how="vertical") if results else empty
    notes += [r.note for r in sorted(results, key=lambda r: r.observer)]
    offsets = {r.observer: r.clock_offset for r in results}
    if stats is not None:
        stats.partitions = len(results)
        stats.files_read = sum(r.files for r in results)
        stats.pids = frozenset(r.pid for r in results)
        stats.offsets = offsets
    files = [m.evidence_file() for m in manifests]
    known = {o for o in offsets.values() if o is not None}
    return finish(
        rows, inv, predictions, allow, attributions=_attributions(from_vm or {}, files),
        evidence=files, clock_offset=known.pop() if len(known) == 1 and len(offsets) == 1 else None,
        notes=notes, index=ctx.index,
    )  # fmt: skip


def _run_local(
    store: Store, parts: list[Partition], ctx: Context, progress: Callable[[int, int], None] | None,
    ray_address: str | None,
) -> list[PartitionResult]:  # fmt: skip
    out = []
    for i, part in enumerate(parts, 1):
        out.append(analyze_partition(store, part, ctx))
        if progress:
            progress(i, len(parts))
    return out


def ray_init_kwargs(address: str | None, num_cpus: int | None = None) -> dict[str, Any]:
    """``ray.init`` arguments: attach to ``address``, or a small local cluster."""
    env = {"env_vars": dict(TASK_ENV)}
    if address:
        return {"address": address, "runtime_env": env, "log_to_driver": False}
    return {
        "num_cpus": num_cpus, "include_dashboard": False, "object_store_memory": OBJECT_STORE_BYTES,
        "runtime_env": env, "log_to_driver": False,
    }  # fmt: skip


def _run_ray(
    store: Store, parts: list[Partition], ctx: Context, progress: Callable[[int, int], None] | None,
    ray_address: str | None,
) -> list[PartitionResult]:  # fmt: skip
    try:
        import ray
    except ImportError:
        raise UsageError("--engine ray needs Ray: pip install 'egresslens[fleet]'") from None
    started = False
    if not ray.is_initialized():
        for k, v in RAY_ENV.items():
            os.environ.setdefault(k, v)
        ray.init(**ray_init_kwargs(ray_address))
        started = True
    try:
        task = ray.remote(analyze_partition).options(runtime_env={"env_vars": dict(TASK_ENV)})
        shared = ray.put(ctx)
        pending = [task.remote(store, part, shared) for part in parts]
        done: list[PartitionResult] = []
        while pending:
            ready, pending = ray.wait(pending, num_returns=1)
            done.extend(ray.get(ready))
            if progress:
                progress(len(done), len(parts))
        return done
    finally:
        if started:
            ray.shutdown()


def tty_progress(label: str = "partitions") -> Callable[[int, int], None] | None:
    """A progress line on stderr when it is a TTY: partitions done / total."""
    if not sys.stderr.isatty():
        return None

    def show(done: int, total: int) -> None:
        end = "\n" if done == total else ""
        print(f"\regresslens: {label} {done}/{total}", end=end, file=sys.stderr, flush=True)

    return show


__all__ = [
    "OBJECT_STORE_BYTES",
    "RAY_ENV",
    "TASK_ENV",
    "Context",
    "Engine",
    "PartitionResult",
    "StoreRun",
    "analyze_partition",
    "analyze_store",
    "ray_init_kwargs",
    "tty_progress",
]
