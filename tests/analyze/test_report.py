"""analyze.report: every output format, hostile content kept inert (the HTML page: test_html.py)."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

import polars as pl
import pytest

from analyze.evidence import EvidenceFile
from analyze.report import guard_csv, render

T0 = dt.datetime(2026, 11, 20, 9, 0, tzinfo=dt.UTC)
XSS = '<script>alert("ua")</script>'


@dataclass(frozen=True)
class _Finding:
    kind: str
    severity: str
    vms: tuple[str, ...]
    src_ips: tuple[str, ...]
    message: str
    fixes: tuple[str, ...] = field(default_factory=tuple)


def analysis() -> SimpleNamespace:
    rows = [
        (T0, "139.219.8.21", 50412, 22, "ssh", "closed", "default_snat", None, None, ["Test2VM"], "strong", False, "azureuser", None),
        (T0 + dt.timedelta(minutes=1), "139.219.8.21", 50414, 80, "http", "closed", "default_snat", None, None, ["Test2VM"], "strong", False, None, XSS),
        (T0 + dt.timedelta(minutes=5), "42.159.94.123", 40122, 22, "ssh", "closed", "instance_public_ip", None, "lbvm-pip", ["lbvm"], "strong", False, "\x1b[31mroot", None),
        (T0 + dt.timedelta(minutes=30), "40.125.161.55", 1025, 22, "ssh", "closed", "lb_frontend", "nat_rule", "mylb/fe", ["Test2VM"], "strong", True, "=cmd|' /C calc'!A0", None),
    ]
    connections = pl.DataFrame(
        rows,
        schema={"ts": pl.Datetime("us", "UTC"), "src_ip": pl.String, "src_port": pl.UInt16, "dst_port": pl.UInt16,
                "service": pl.String, "state": pl.String, "class": pl.String, "via": pl.String, "resource": pl.String,
                "candidate_vms": pl.List(pl.String), "confidence": pl.String, "allowed": pl.Boolean,
                "ssh_user": pl.String, "http_user_agent": pl.String},
        orient="row",
    )  # fmt: skip
    addresses = connections.group_by("src_ip").agg(pl.col("class").first(), pl.len().alias("connections"))
    findings = [
        _Finding("allowlist_miss", "high", ("Test2VM",), ("139.219.8.21",), f"refused {XSS}", ("add an outbound rule",)),
        _Finding("unexpected_egress", "medium", ("Test2VM",), ("40.125.161.55",), "observed lb_frontend"),
    ]
    evidence = [EvidenceFile(path="x.pcap", kind="pcap", log_type=None, sha256="ab" * 32, size=10,
                             first_ts=T0, last_ts=T0, records=4, skipped=0, rejects=0)]  # fmt: skip
    return SimpleNamespace(connections=connections, addresses=addresses, findings=findings, evidence=evidence,
                           clock_offset=dt.timedelta(seconds=0.25))  # fmt: skip


def test_json_has_the_four_sections() -> None:
    doc = json.loads(render(analysis(), "json"))  # type: ignore[arg-type]
    assert set(doc) == {"addresses", "connections", "findings", "evidence"}
    assert len(doc["connections"]) == 4 and doc["connections"][0]["class"] == "default_snat"
    assert doc["findings"][0]["kind"] == "allowlist_miss" and doc["findings"][0]["fixes"] == ["add an outbound rule"]
    assert doc["evidence"][0]["sha256"] == "ab" * 32 and doc["evidence"][0]["first_ts"].endswith("Z")


def test_terminal_view_lists_findings_first_and_escapes_input() -> None:
    text = render(analysis(), "table").decode()  # type: ignore[arg-type]
    assert text.index("== findings (2)") < text.index("== addresses") < text.index("== connections")
    assert "[high] allowlist_miss" in text and "fix: add an outbound rule" in text
    assert "\x1b" not in text and "\\x1b[31mroot" in text
    assert "clock offset, logs minus capture: +0.250 s" in text


def test_csv_guards_against_formula_injection() -> None:
    text = render(analysis(), "csv").decode()  # type: ignore[arg-type]
    frame = pl.read_csv(text.encode())
    assert "'=cmd|' /C calc'!A0" in frame["ssh_user"].to_list()
    assert not any(str(v).startswith(("=", "+", "@")) for col in frame.columns for v in frame[col].to_list() if v is not None)


@pytest.mark.parametrize("value", ["=1+1", "+1", "-1", "@SUM(A1)", "\t=x"])
def test_guard_csv_prefixes_risky_cells(value: str) -> None:
    assert guard_csv(pl.DataFrame({"a": [value, "plain"]}))["a"].to_list() == ["'" + value, "plain"]


def test_parquet_holds_the_connection_rows(tmp_path: Path) -> None:
    path = tmp_path / "r.parquet"
    path.write_bytes(render(analysis(), "parquet"))  # type: ignore[arg-type]
    assert pl.read_parquet(path).height == 4
