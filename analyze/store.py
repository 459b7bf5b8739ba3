"""A fleet's evidence store: connection records as hive-partitioned Parquet, plus manifests.

Layout under the store's URL (a local folder, or ``abfs://CONTAINER/PATH`` / ``az://...``)::

    observer=NAME/date=YYYY-MM-DD/part-<sha256>.parquet    records in capture.schema.SCHEMA
    _manifest/observer=NAME/<sha256>.json                   one object per ingested evidence

The key of ingested evidence is (observer, sha256 of its bytes).  A part's name derives
from that key and its partition, so ingesting the same bytes again writes the same names,
and two hosts ingesting at once never write the same object for different data.  Parts are
written first (under a hidden temporary name, then renamed; one put on object storage),
the manifest last: a reader only reads the parts that a manifest lists, so a killed ingest
leaves nothing visible (its orphan parts are overwritten by the next ingest of the file).

A connection's identity in the store is (observer, ``conn_id``): a live capture's rows of a
connection still open at a rotation come again later, and readers keep the most complete.

polars reads and writes the Parquet objects itself (``storage_options``); adlfs is used
only for what polars does not do: listing, small manifest objects, existence checks.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import os
import sys
import tempfile
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any, Final

import polars as pl

from analyze.evidence import EvidenceFile, expand, load_evidence, sha256_of
from capture.errors import InputError, UsageError
from capture.schema import SCHEMA

REMOTE_SCHEMES: Final = ("abfs://", "abfss://", "az://")
"""URL schemes of Azure Blob Storage / ADLS Gen2 stores."""
MANIFESTS: Final = "_manifest"
"""Folder of the manifest objects, beside the observer partitions."""
MARGIN: Final = dt.timedelta(hours=1)
"""Evidence read beyond ``--since`` / ``--until``, so a log line logged just past the edge
still meets its captured connection (then the window is applied to the merged rows)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Ingested:
    """One manifest: one evidence file ingested for one observer."""

    observer: str
    path: str
    sha256: str
    size: int
    kind: str
    log_type: str | None
    first_ts: str | None
    """ISO 8601 (UTC) of the first record, or None without records."""
    last_ts: str | None
    records: int
    skipped: int
    rejects: int
    parts: tuple[tuple[str, str, int], ...]
    """(relative part path, date, records) per partition written."""
    ingested_at: str
    version: str
    ingest_id: str
    """Shared by every manifest one ``ingest`` run wrote."""

    def evidence_file(self) -> EvidenceFile:
        """As ``analyze`` lists its inputs."""
        return EvidenceFile(
            path=self.path, kind=self.kind, log_type=self.log_type, sha256=self.sha256,  # type: ignore[arg-type]
            size=self.size, first_ts=_parse_ts(self.first_ts), last_ts=_parse_ts(self.last_ts),
            records=self.records, skipped=self.skipped, rejects=self.rejects,
        )  # fmt: skip


@dataclass(slots=True)
class IngestResult:
    """What one ``ingest`` did."""

    written: list[Ingested] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    """(observer, path) already in the store: nothing written."""
    notes: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def records(self) -> int:
        return sum(m.records for m in self.written)


def _parse_ts(text: str | None) -> dt.datetime | None:
    return None if text is None else dt.datetime.fromisoformat(text)


def _iso(value: object) -> str | None:
    return value.isoformat() if isinstance(value, dt.datetime) else None


def _version() -> str:
    try:
        return metadata.version("egresslens")
    except metadata.PackageNotFoundError:  # running from a source tree
        return "0+unknown"


# --- where the store lives ------------------------------------------------------------


def azure_options(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """polars ``storage_options`` for Azure from the usual environment variables.

    ``AZURE_STORAGE_CONNECTION_STRING``, or ``AZURE_STORAGE_ACCOUNT_NAME`` (or
    ``AZURE_STORAGE_ACCOUNT``) with ``AZURE_STORAGE_ACCOUNT_KEY`` (or ``AZURE_STORAGE_KEY``)
    or ``AZURE_STORAGE_SAS_TOKEN``; ``AZURE_STORAGE_ENDPOINT`` for another endpoint (Azurite:
    ``http://127.0.0.1:10000/devstoreaccount1``).  Without a key or token, polars' Azure
    credential provider (az login, managed identity) is used.  Credentials never come
    from the command line, so they stay out of shell history and process lists.
    """
    env = os.environ if env is None else env
    out: dict[str, str] = {}
    conn = env.get("AZURE_STORAGE_CONNECTION_STRING")
    if conn:
        parts = dict(p.split("=", 1) for p in conn.split(";") if "=" in p)
        if "AccountName" in parts:
            out["account_name"] = parts["AccountName"]
        if "AccountKey" in parts:
            out["account_key"] = parts["AccountKey"]
        if "SharedAccessSignature" in parts:
            out["sas_token"] = parts["SharedAccessSignature"]
        if "BlobEndpoint" in parts:
            out["endpoint"] = parts["BlobEndpoint"].rstrip("/")
        if parts.get("UseDevelopmentStorage", "").lower() == "true":
            out["use_emulator"] = "true"
    name = env.get("AZURE_STORAGE_ACCOUNT_NAME") or env.get("AZURE_STORAGE_ACCOUNT")
    key = env.get("AZURE_STORAGE_ACCOUNT_KEY") or env.get("AZURE_STORAGE_KEY")
    sas = env.get("AZURE_STORAGE_SAS_TOKEN")
    endpoint = env.get("AZURE_STORAGE_ENDPOINT")
    if name:
        out["account_name"] = name
    if key:
        out["account_key"] = key
    if sas:
        out["sas_token"] = sas.lstrip("?")
    if endpoint:
        out["endpoint"] = endpoint.rstrip("/")
    if out.get("endpoint", "").startswith("http://"):
        out["allow_http"] = "true"
    return out


@dataclass(slots=True)
class Store:
    """A store at ``url``: a local folder or an Azure Blob container path.

    Picklable (a Ray task receives it): the adlfs client is made on first use.
    """

    url: str
    options: dict[str, str] = field(default_factory=dict)
    _fs: Any = field(default=None, repr=False, compare=False)
    _ready: bool = field(default=False, repr=False, compare=False)

    @classmethod
    def open(cls, url: str, options: Mapping[str, str] | None = None) -> Store:
        """The store at ``url`` (Azure credentials from the environment unless given).

        Raises:
            UsageError: an empty URL or an unsupported scheme.
        """
        if not url:
            raise UsageError("--store: give a folder or abfs://CONTAINER/PATH")
        if "://" in url and not url.startswith(REMOTE_SCHEMES) and not url.startswith("file://"):
            raise UsageError(f"--store {url!r}: use a local folder or abfs:// / az:// (Azure Blob)")
        if url.startswith("file://"):
            url = url[len("file://"):]
        remote = url.startswith(REMOTE_SCHEMES)
        opts = dict(options) if options is not None else (azure_options() if remote else {})
        return cls(url=url.rstrip("/"), options=opts)

    def __getstate__(self) -> tuple[str, dict[str, str]]:
        return self.url, self.options

    def __setstate__(self, state: tuple[str, dict[str, str]]) -> None:
        self.url, self.options = state
        self._fs = None
        self._ready = False

    @property
    def remote(self) -> bool:
        return self.url.startswith(REMOTE_SCHEMES)

    def uri(self, rel: str) -> str:
        """The full URL (or local path) of ``rel`` in the store."""
        return f"{self.url}/{rel}"

    def _blob_path(self, rel: str) -> str:
        """``CONTAINER/PATH/rel`` as adlfs names it."""
        return self.uri(rel).split("://", 1)[1]

    @property
    def fs(self) -> Any:
        if self._fs is None:
            import adlfs  # only for remote stores: listing, manifests

            o = self.options
            kwargs: dict[str, Any] = {"account_name": o.get("account_name")}
            if "endpoint" in o:  # Azurite or another endpoint: adlfs takes it in a connection string
                secret = (
                    f"AccountKey={o['account_key']};" if "account_key" in o
                    else f"SharedAccessSignature={o['sas_token']};" if "sas_token" in o else ""
                )  # fmt: skip
                kwargs = {
                    "connection_string": (
                        f"DefaultEndpointsProtocol={o['endpoint'].split('://', 1)[0]};"
                        f"AccountName={o.get('account_name', '')};{secret}BlobEndpoint={o['endpoint']};"
                    )
                }
            elif "account_key" in o:
                kwargs["account_key"] = o["account_key"]
            elif "sas_token" in o:
                kwargs["sas_token"] = o["sas_token"]
            else:
                kwargs["anon"] = False  # DefaultAzureCredential: az login, managed identity
            self._fs = adlfs.AzureBlobFileSystem(**kwargs)
        return self._fs

    def polars_options(self) -> dict[str, Any]:
        """Keyword arguments for polars' readers and writers."""
        if not self.remote:
            return {}
        if "account_key" in self.options or "sas_token" in self.options:
            return {"storage_options": self.options}
        return {"storage_options": self.options or None, "credential_provider": "auto"}

    # --- objects -------------------------------------------------------------------

    def exists(self, rel: str) -> bool:
        if not self.remote:
            return Path(self.uri(rel)).exists()
        return bool(self.fs.exists(self._blob_path(rel)))

    def _container(self) -> None:
        """Create the container on the first write to it (a new store)."""
        if self._ready:
            return
        self._ready = True
        container = self._blob_path("").split("/", 1)[0]
        if not self.fs.exists(container):
            try:
                self.fs.mkdir(container)
            except FileExistsError:  # another host created it meanwhile
                pass

    def put_bytes(self, rel: str, data: bytes) -> None:
        """Write ``data`` at ``rel`` atomically (temporary name + rename; one put remote)."""
        if self.remote:
            self._container()
            self.fs.pipe_file(self._blob_path(rel), data)
            return
        path = Path(self.uri(rel))
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
        try:
            tmp.write_bytes(data)
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise

    def put_parquet(self, rel: str, df: pl.DataFrame) -> None:
        """Write ``df`` as one Parquet object (polars' own object-store writer remote)."""
        if self.remote:
            self._container()
            df.write_parquet(self.uri(rel), **self.polars_options())
            return
        buf = io.BytesIO()
        df.write_parquet(buf)
        self.put_bytes(rel, buf.getvalue())

    def read_bytes(self, rel: str) -> bytes:
        if self.remote:
            return bytes(self.fs.cat_file(self._blob_path(rel)))
        return Path(self.uri(rel)).read_bytes()

    def list(self, prefix: str) -> list[str]:
        """Relative names of the visible objects under ``prefix`` (recursive, sorted)."""
        if self.remote:
            base = self._blob_path("")
            try:
                found = self.fs.find(self._blob_path(prefix))
            except FileNotFoundError:
                return []
            return sorted(p[len(base):] for p in found if not Path(p).name.startswith("."))
        root = Path(self.url)
        top = root / prefix
        if not top.exists():
            return []
        return sorted(
            str(p.relative_to(root)) for p in top.rglob("*") if p.is_file() and not p.name.startswith(".")
        )

    # --- manifests -----------------------------------------------------------------

    @staticmethod
    def manifest_name(observer: str, sha256: str) -> str:
        return f"{MANIFESTS}/observer={observer}/{sha256}.json"

    def manifests(self, hosts: Sequence[str] | None = None) -> list[Ingested]:
        """Every manifest (only these observers' with ``hosts``), oldest ingest first."""
        names: list[str] = []
        if hosts is None:
            names = [n for n in self.list(MANIFESTS) if n.endswith(".json")]
        else:
            for host in hosts:
                names += [n for n in self.list(f"{MANIFESTS}/observer={host}") if n.endswith(".json")]
        out = []
        for name in names:
            try:
                doc = json.loads(self.read_bytes(name))
                doc["parts"] = tuple(tuple(p) for p in doc["parts"])
                out.append(Ingested(**doc))
            except (ValueError, TypeError, KeyError) as exc:
                raise InputError(f"{self.uri(name)}: not a store manifest: {exc}") from exc
        return sorted(out, key=lambda m: (m.ingested_at, m.observer, m.sha256))


# --- ingest ---------------------------------------------------------------------------


_OBSERVER_RE: Final = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,252}$"


def check_observer(name: str, where: str) -> None:
    """An observer names a partition folder: a host name, nothing that escapes the path.

    Raises:
        InputError: ``name`` is not a host-name-like token.
    """
    import re

    if not re.match(_OBSERVER_RE, name):
        raise InputError(f"{where}: observer {name[:80]!r} is not a host name (letters, digits, . _ -)")


def _units(files: list[Path]) -> list[list[Path]]:
    """Read units: each capture and records file alone, all logs together (rotated sets)."""
    from capture.pcapfile import is_capture

    single = [[p] for p in files if p.suffix == ".parquet" or is_capture(p)]
    logs = [p for p in files if not (p.suffix == ".parquet" or is_capture(p))]
    return single + ([logs] if logs else [])


def _by_file(unit: list[Path], records: pl.DataFrame) -> dict[str, pl.DataFrame]:
    """A unit's records per input file: logs by the file in their first ``origin``."""
    if len(unit) == 1:
        return {str(unit[0]): records}
    source = pl.col("origin").list.first().str.replace(r":\d+$", "")
    tagged = records.with_columns(_file=source)
    out = {str(p): tagged.filter(pl.col("_file") == str(p)).drop("_file") for p in unit}
    unmatched = tagged.filter(~pl.col("_file").is_in([str(p) for p in unit]))
    if unmatched.height:
        raise InputError(f"{unmatched['_file'][0]}: records whose origin names no input file")
    return out


def ingest(
    paths: Sequence[str],
    store: Store,
    *,
    observer: str | None = None,
    year: int | None = None,
    tz: str = "UTC",
    stdin: Any = None,
) -> IngestResult:
    """Append the connection records of ``paths`` to ``store``.

    Args:
        paths: what ``analyze`` reads: captures, logs, records folders, plain folders;
            ``-`` for stdin (read into a temporary file first: its sha256 is the key).
        store: where to write.
        observer: sets the observer of every record; without it each record keeps its own,
            and records without one are refused.
        year, tz: as for ``logs read``.
        stdin: a binary stream for ``-`` (default: ``sys.stdin.buffer``).

    Returns:
        What was written and what was already there.

    Raises:
        InputError: unreadable input, records without an observer, a bad observer name.
    """
    if observer is not None:
        check_observer(observer, "--observer")
    result = IngestResult()
    ingest_id = uuid.uuid4().hex
    with tempfile.TemporaryDirectory(prefix="egresslens-ingest-") as tmp:
        named = {}
        real: list[str] = []
        for p in paths:
            if p == "-":
                spool = Path(tmp) / "stdin"
                with spool.open("wb") as fh:
                    src = stdin or sys.stdin.buffer
                    for block in iter(lambda: src.read(1 << 20), b""):
                        fh.write(block)
                named[str(spool)] = "-"
                real.append(str(spool))
            else:
                real.append(p)
        files = expand(real)
        for unit in _units(files):
            digests = {str(p): sha256_of(p) for p in unit}
            todo = {str(p) for p in unit}
            if observer is not None:  # the key is known before reading: skip what is there
                todo = {k for k in todo if not store.exists(Store.manifest_name(observer, digests[k]))}
                result.skipped += [(observer, named.get(str(p), str(p))) for p in unit if str(p) not in todo]
                if not todo:
                    continue
            # A rotated log set is read whole (the year of dateless lines depends on it).
            ev = load_evidence([str(p) for p in unit], observer=observer, year=year, tz=tz)
            result.notes.extend(ev.notes)
            result.errors.extend(ev.errors)
            info = {f.path: f for f in ev.files}
            for path, records in _by_file(unit, ev.records).items():
                if path not in todo:
                    continue
                _ingest_file(
                    store, path, named.get(path, path), digests[path], info[path], records,
                    observer=observer, ingest_id=ingest_id, result=result,
                )  # fmt: skip
    return result


def _ingest_file(
    store: Store, path: str, shown: str, sha256: str, info: EvidenceFile, records: pl.DataFrame,
    *, observer: str | None, ingest_id: str, result: IngestResult,
) -> None:  # fmt: skip
    if observer is not None:
        records = records.with_columns(observer=pl.lit(observer, pl.String))
    else:
        nameless = records.filter(pl.col("observer").is_null())
        if nameless.height:
            where = nameless["origin"][0][0] if nameless["origin"][0] is not None and len(nameless["origin"][0]) else shown
            raise InputError(
                f"{shown}: {nameless.height:,} records name no observer (first: {where}); "
                "a store partition needs one: use --observer NAME"
            )
    if records.filter(pl.col("conn_id").is_null()).height:
        raise InputError(f"{shown}: records without a conn_id have no identity in the store")
    if records.filter(pl.col("ts").is_null()).height:
        raise InputError(f"{shown}: records without a time cannot be partitioned by date")
    names = sorted(records["observer"].unique().to_list()) or ([observer] if observer else [])
    if not names:
        # No records and no observer to file it under: nothing to write, say so.
        result.notes.append(f"{shown}: no connection records; nothing ingested")
        return
    for name in names:
        check_observer(name, shown)
        key = Store.manifest_name(name, sha256)
        if observer is None and store.exists(key):
            result.skipped.append((name, shown))
            continue
        mine = records.filter(pl.col("observer") == name).select(SCHEMA.names())
        dated = mine.with_columns(_date=pl.col("ts").dt.date()).sort("ts", "conn_id", maintain_order=True)
        parts = []
        for (day,), part in sorted(dated.partition_by("_date", as_dict=True).items()):
            rel = f"observer={name}/date={day.isoformat()}/part-{sha256}.parquet"
            store.put_parquet(rel, part.drop("_date"))
            parts.append((rel, day.isoformat(), part.height))
        manifest = Ingested(
            observer=name, path=shown, sha256=sha256, size=info.size, kind=info.kind,
            log_type=info.log_type, first_ts=_iso(mine["ts"].min()), last_ts=_iso(mine["ts"].max()),
            records=mine.height, skipped=info.skipped, rejects=info.rejects, parts=tuple(parts),
            ingested_at=dt.datetime.now(dt.UTC).isoformat(), version=_version(), ingest_id=ingest_id,
        )  # fmt: skip
        doc = asdict(manifest)
        store.put_bytes(key, json.dumps(doc, indent=1).encode())
        result.written.append(manifest)


def ingest_frame(store: Store, records: pl.DataFrame, *, name: str, observer: str) -> Ingested | None:
    """Ingest records produced in this process (a live capture's rotation) as evidence ``name``.

    The key is the sha256 of the records' Parquet bytes, so writing the same batch twice is
    a no-op as for files.
    """
    check_observer(observer, "--observer")
    buf = io.BytesIO()
    records.select(SCHEMA.names()).write_parquet(buf)
    sha = hashlib.sha256(buf.getvalue()).hexdigest()
    if store.exists(Store.manifest_name(observer, sha)):
        return None
    first, last = (records["ts"].min(), records["ts"].max()) if records.height else (None, None)
    info = EvidenceFile(
        path=name, kind="records", log_type=None, sha256=sha, size=len(buf.getvalue()),
        first_ts=first, last_ts=last, records=records.height, skipped=0, rejects=0,  # type: ignore[arg-type]
    )  # fmt: skip
    result = IngestResult()
    _ingest_file(store, name, name, sha, info, records, observer=observer, ingest_id=uuid.uuid4().hex, result=result)
    return result.written[0] if result.written else None


# --- reading --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Partition:
    """The unit of work of the engines: one observer's parts in the time window.

    An observer, not an observer-day: correlation and the clock offset are per observer,
    and a connection may begin before midnight and be logged after it.
    """

    observer: str
    parts: tuple[str, ...]
    """Relative part paths, in ingest order."""


def partitions(
    store: Store,
    *,
    hosts: Sequence[str] | None = None,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
) -> tuple[list[Partition], list[Ingested]]:
    """The partitions to read, pruned by observer and date, and the manifests behind them.

    A date partition is read when it meets ``[since - MARGIN, until + MARGIN)``.
    """
    manifests = store.manifests(hosts)
    lo = (since - MARGIN).date() if since is not None else None
    hi = (until + MARGIN).date() if until is not None else None
    by_obs: dict[str, dict[str, None]] = {}
    used: list[Ingested] = []
    for m in manifests:
        keep = [rel for rel, day, _ in m.parts if (lo is None or day >= lo.isoformat()) and (hi is None or day <= hi.isoformat())]
        if keep or not m.parts:
            used.append(m)
        parts = by_obs.setdefault(m.observer, {})
        for rel in keep:
            parts[rel] = None
    out = [Partition(observer=o, parts=tuple(p)) for o, p in sorted(by_obs.items()) if p]
    return out, used


def read_partition(
    store: Store, part: Partition, *, since: dt.datetime | None = None, until: dt.datetime | None = None
) -> pl.DataFrame:
    """One observer's records in ``SCHEMA``, one row per ``conn_id``, sorted by time.

    Of a connection's several rows (a live capture's rotations), the most complete wins:
    an ended state over ``open``, then the longest, then the most packets.

    Raises:
        InputError: a part that is not Parquet in the record schema.
    """
    urls = [store.uri(rel) for rel in part.parts]
    try:
        lf = pl.scan_parquet(urls, missing_columns="insert", extra_columns="ignore", **store.polars_options())
        lf = lf.select(SCHEMA.names()).cast(dict(SCHEMA))
        if since is not None:
            lf = lf.filter(pl.col("ts") >= since - MARGIN)
        if until is not None:
            lf = lf.filter(pl.col("ts") < until + MARGIN)
        df = lf.collect()
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise InputError(f"{store.url}: observer={part.observer}: cannot read its parts: {exc}") from exc
    progress = (
        (pl.col("state") != "open").cast(pl.Int8).fill_null(0),
        pl.col("duration").fill_null(dt.timedelta(0)),
        (pl.col("orig_pkts").fill_null(0) + pl.col("resp_pkts").fill_null(0)),
    )
    return (
        df.sort(*progress, maintain_order=True)
        .unique(subset=["observer", "conn_id"], keep="last", maintain_order=True)
        .sort("ts", "conn_id", maintain_order=True)
    )


def iter_records(store: Store, parts: Sequence[Partition]) -> Iterator[pl.DataFrame]:
    """Each partition's records, one at a time."""
    for p in parts:
        yield read_partition(store, p)


__all__ = [
    "MANIFESTS",
    "MARGIN",
    "IngestResult",
    "Ingested",
    "Partition",
    "Store",
    "azure_options",
    "check_observer",
    "ingest",
    "ingest_frame",
    "iter_records",
    "partitions",
    "read_partition",
]
