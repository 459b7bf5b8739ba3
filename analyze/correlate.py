"""Correlate evidence of one connection: a captured connection and its log lines become one row.

* **SSH.**  A captured SSH connection and the auth.log (or journal) record of the same
  connection (same source address and port, time within a tolerance once the clock
  offset is applied, same observer when both name one) merge into one row: the capture's
  fields, the log's ``ssh_user`` / ``ssh_auth`` / ``ssh_method``, and both in ``evidence``
  and ``origin``.
* **HTTP.**  An access-log line (``weblog``, ``w3c``) attaches to the captured HTTP(S)
  connection it belongs to: first by source address and request line (method and path)
  nearest in time; otherwise the latest connection from that address that was open at the
  line's time.  A keep-alive connection collects all its lines; its HTTP fields are the
  capture's, completed by the first line (status, user agent).
* Evidence found in one source only stays its own row.

The clock offset between logs and capture is not assumed zero: it is the median of
``log ts - capture ts`` over *unambiguous* pairs (a source address + port seen exactly once
in both, SSH), or, without SSH pairs, over HTTP pairs unique by address + request line.
Matching then compares ``log ts - offset`` with the capture's time.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final, Literal

import polars as pl

from capture.errors import UsageError
from capture.schema import SCHEMA

CAPTURED: Final = ("pcap", "live", "zeek")
"""Evidence kinds that saw the packets of a connection."""
SSH_LOGS: Final = ("authlog",)
"""Evidence kinds holding sshd's view of a connection (journal records say ``authlog`` too)."""
HTTP_LOGS: Final = ("weblog", "w3c")
"""Evidence kinds holding one HTTP request each."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Correlation:
    """What ``correlate`` returns."""

    records: pl.DataFrame | pl.LazyFrame
    """Records in ``SCHEMA``, merged where evidence of one connection was found twice;
    sorted by ``ts``, ``conn_id``.  Without both captures and logs there is nothing to
    merge: the input, as given."""
    clock_offset: dt.timedelta | None
    """Estimated ``log clock - capture clock``; None when no pair allowed an estimate."""
    offset_from: Literal["ssh", "http"] | None = None
    """Which pairs the offset was estimated from."""
    pairs: Mapping[str, int] = field(default_factory=dict)
    """Counts: ``offset`` (pairs the estimate used), ``ssh`` (auth records merged),
    ``http`` (access-log lines attached)."""

    @property
    def note(self) -> str:
        """One sentence for the report's evidence section."""
        if self.clock_offset is None:
            return "clock offset between logs and capture: unknown (no matching pairs)"
        seconds = self.clock_offset.total_seconds()
        return (
            f"clock offset logs - capture: {seconds:+.3f} s (median of {self.pairs.get('offset', 0)} "
            f"{self.offset_from} pairs); merged {self.pairs.get('ssh', 0)} auth records and "
            f"attached {self.pairs.get('http', 0)} access-log lines"
        )


def _has(kinds: tuple[str, ...]) -> pl.Expr:
    return pl.any_horizontal(pl.col("evidence").list.contains(pl.lit(k)) for k in kinds)


def _median_offset(pairs: pl.DataFrame) -> dt.timedelta | None:
    if pairs.height == 0:
        return None
    micros = pairs.select((pl.col("log_ts") - pl.col("cap_ts")).dt.total_microseconds().median()).item()
    return dt.timedelta(microseconds=round(micros))


def _unique_by(df: pl.DataFrame, keys: list[str]) -> pl.DataFrame:
    return df.filter(pl.len().over(keys) == 1)


def _estimate(
    caps: pl.DataFrame, auth: pl.DataFrame, web: pl.DataFrame
) -> tuple[dt.timedelta | None, Literal["ssh", "http"] | None, int]:
    keys = ["src_ip", "src_port"]
    ssh = _unique_by(caps.filter(pl.col("service") == "ssh").select(*keys, cap_ts="ts"), keys).join(
        _unique_by(auth.select(*keys, log_ts="ts"), keys), on=keys
    )
    if ssh.height:
        return _median_offset(ssh), "ssh", ssh.height
    keys = ["src_ip", "http_method", "http_path"]
    cap_http = caps.filter(pl.col("http_method").is_not_null() & pl.col("http_path").is_not_null())
    http = _unique_by(cap_http.select(*keys, cap_ts="ts"), keys).join(
        _unique_by(web.select(*keys, log_ts="ts"), keys), on=keys
    )
    if http.height:
        return _median_offset(http), "http", http.height
    return None, None, 0


def _observer_ok() -> pl.Expr:
    return pl.col("observer").is_null() | pl.col("cap_observer").is_null() | (pl.col("observer") == pl.col("cap_observer"))


def correlate(records: pl.DataFrame | pl.LazyFrame, *, tolerance: str = "2s") -> Correlation:
    """Merge the evidence of each connection into one row.

    Args:
        records: Connection records in ``SCHEMA`` from any mix of sources (captures, logs).
        tolerance: How far apart (after the clock offset) a log line and the capture may
            be, as a polars duration string.

    Returns:
        The merged records, the estimated clock offset and the pair counts.

    Raises:
        UsageError: ``tolerance`` is not a duration.
    """
    tol = pl.lit(_duration(tolerance), pl.Duration("us"))
    captured = _has(CAPTURED)
    logged = _has(SSH_LOGS + HTTP_LOGS)
    lf = records.lazy().select(SCHEMA.names())
    kinds = lf.select(captured.fill_null(False).any().alias("cap"), (~captured & logged).fill_null(False).any().alias("log"))
    both = kinds.collect().row(0)
    if not all(both):
        # Only captures or only logs: nothing to merge, and the records stay as they are
        # (lazy, not copied: a 10M-row records folder is not held twice).
        out = records.select(SCHEMA.names()) if isinstance(records, pl.DataFrame) else lf
        return Correlation(records=out, clock_offset=None)
    df = lf.collect().with_row_index("_row")
    caps = df.filter(captured)
    auth = df.filter(~captured & _has(SSH_LOGS) & pl.col("src_ip").is_not_null() & pl.col("src_port").is_not_null())
    web = df.filter(~captured & _has(HTTP_LOGS) & pl.col("src_ip").is_not_null())
    offset, source, n_offset = _estimate(caps, auth, web)
    shift = pl.lit(offset or dt.timedelta(0), pl.Duration("us"))
    cap_side = caps.select(
        pl.col("_row").alias("cap_row"), "src_ip", "src_port", "http_method", "http_path",
        pl.col("ts").alias("cap_ts"), pl.col("observer").alias("cap_observer"),
        pl.col("duration").alias("cap_duration"), "service",
    )  # fmt: skip

    # SSH: same address and port, nearest in time.
    ssh_links = (
        auth.select("_row", "src_ip", "src_port", "observer", (pl.col("ts") - shift).alias("t"))
        .sort("t")
        .join_asof(
            cap_side.filter(pl.col("service") == "ssh").drop("http_method", "http_path").sort("cap_ts"),
            left_on="t", right_on="cap_ts", by=["src_ip", "src_port"], strategy="nearest",
            tolerance=tolerance, check_sortedness=False,  # sorted by time overall, so per key
        )  # fmt: skip
        .filter(pl.col("cap_row").is_not_null() & _observer_ok())
        # one auth record per captured connection: the nearest
        .sort((pl.col("t") - pl.col("cap_ts")).abs())
        .unique("cap_row", keep="first")
        .select(pl.col("_row").alias("log_row"), "cap_row")
    )

    # HTTP, pass 1: same address and request line, nearest in time.
    http_caps = cap_side.filter(pl.col("service").is_in(["http", "https"]))
    lines = web.select(
        "_row", "src_ip", "http_method", "http_path", "observer", (pl.col("ts") - shift).alias("t")
    ).sort("t")
    first = (
        lines.filter(pl.col("http_method").is_not_null() & pl.col("http_path").is_not_null())
        .join_asof(
            http_caps.drop("src_port").filter(pl.col("http_method").is_not_null()).sort("cap_ts"),
            left_on="t", right_on="cap_ts", by=["src_ip", "http_method", "http_path"],
            strategy="nearest", tolerance=tolerance, check_sortedness=False,  # as above
        )  # fmt: skip
        .filter(pl.col("cap_row").is_not_null() & _observer_ok())
        .sort((pl.col("t") - pl.col("cap_ts")).abs())
        .unique("cap_row", keep="first")  # the first request of a connection is one line
        .select(pl.col("_row").alias("log_row"), "cap_row")
    )
    # HTTP, pass 2: the latest connection from the address open at the line's time.
    rest = (
        lines.join(first, left_on="_row", right_on="log_row", how="anti")
        .join_asof(
            http_caps.select("cap_row", "src_ip", "cap_ts", "cap_observer", "cap_duration").sort("cap_ts"),
            left_on="t", right_on="cap_ts", by="src_ip", strategy="backward",
            check_sortedness=False,  # both sides sorted by time overall, so within each address
        )
        .filter(
            pl.col("cap_row").is_not_null()
            & _observer_ok()
            & (pl.col("t") <= pl.col("cap_ts") + pl.col("cap_duration").fill_null(dt.timedelta(0)) + tol)
        )
        .select(pl.col("_row").alias("log_row"), "cap_row")
    )
    links = pl.concat([ssh_links, first, rest])

    log_info = (
        links.join(df, left_on="log_row", right_on="_row")
        .sort("ts", "log_row")
        .group_by("cap_row")
        .agg(
            pl.col("evidence").list.explode(keep_nulls=False, empty_as_null=False).alias("l_evidence"),
            pl.col("origin").list.explode(keep_nulls=False, empty_as_null=False).alias("l_origin"),
            *(pl.col(c).drop_nulls().first().alias(f"l_{c}") for c in _FILLED),
        )
    )
    merged = df.join(log_info, left_on="_row", right_on="cap_row", how="left").with_columns(
        pl.when(pl.col("l_evidence").is_not_null())
        .then(pl.concat_list("evidence", "l_evidence").list.unique(maintain_order=True))
        .otherwise(pl.col("evidence"))
        .alias("evidence"),
        pl.when(pl.col("l_origin").is_not_null())
        .then(pl.concat_list("origin", "l_origin"))
        .otherwise(pl.col("origin"))
        .alias("origin"),
        *(pl.coalesce(f"l_{c}", c).alias(c) for c in _FROM_LOG),
        *(pl.coalesce(c, f"l_{c}").alias(c) for c in _FILLED if c not in _FROM_LOG),
    )
    out = (
        merged.join(links.select("log_row"), left_on="_row", right_on="log_row", how="anti")
        .select(SCHEMA.names())
        .sort("ts", "conn_id", nulls_last=True)
    )
    return Correlation(
        records=out,
        clock_offset=offset,
        offset_from=source,
        pairs={"offset": n_offset, "ssh": ssh_links.height, "http": first.height + rest.height},
    )


_FROM_LOG: Final = ("ssh_user", "ssh_auth", "ssh_method")
"""Columns whose log value wins: sshd knows the user and the outcome, packets do not."""
_FILLED: Final = (
    "ssh_user", "ssh_auth", "ssh_method", "observer", "dst_ip", "dst_port", "http_method",
    "http_host", "http_path", "http_status", "http_user_agent", "http_xff",
)  # fmt: skip
"""Columns a log line fills where the capture has nothing."""


def _duration(text: str) -> dt.timedelta:
    """A duration string (``2s``, ``500ms``, ``1m30s``) -> timedelta; UsageError otherwise."""
    units = {"us": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600, "d": 86400}
    parts = re.findall(r"(\d+(?:\.\d+)?)(us|ms|s|m|h|d)", text)
    if not parts or "".join(n + u for n, u in parts) != text.strip():
        raise UsageError(f"--tolerance: not a duration like 2s or 500ms: {text!r}")
    return dt.timedelta(seconds=sum(float(n) * units[u] for n, u in parts))


__all__ = ["CAPTURED", "HTTP_LOGS", "SSH_LOGS", "Correlation", "correlate"]
