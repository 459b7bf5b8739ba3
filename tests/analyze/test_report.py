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
from analyze.report import render

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




def test_parquet_holds_the_connection_rows(tmp_path: Path) -> None:
    path = tmp_path / "r.parquet"
    path.write_bytes(render(analysis(), "parquet"))  # type: ignore[arg-type]
    assert pl.read_parquet(path).height == 4


# --- the report folder (issue 10) ------------------------------------------------------------

DEMO = Path(__file__).resolve().parent.parent.parent / "pcaps" / "demo"


@pytest.fixture(scope="module")
def demo_analysis():  # type: ignore[no-untyped-def]
    from analyze.pipeline import run

    return run([str(DEMO / n) for n in ("webapp-vm.pcap", "auth.log", "access.log")],
               [str(DEMO / "inventory.yaml"), str(DEMO / "ServiceTags_Public_lab.json")], allowlist="web-app")  # fmt: skip


def test_report_folder_files_and_schemas(demo_analysis, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from analyze.classify import CLASSIFIED_SCHEMA
    from analyze.findings import FINDINGS_SCHEMA, SUMMARY_COLUMNS
    from analyze.report import verdict, write_folder

    folder = tmp_path / "rep"
    written = write_folder(demo_analysis, folder, html=True)
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        ["connections.parquet", "addresses.parquet", "findings.json", "evidence.json", "summary.json", "report.html"]
    )
    assert [p.name for p in written][-1] == "report.html"
    conns = pl.read_parquet(folder / "connections.parquet")
    assert conns.columns == [*CLASSIFIED_SCHEMA.names(), "allowed", "findings"]
    assert conns.schema["findings"] == pl.List(pl.String) and conns.schema["allowed"] == pl.Boolean
    assert conns.height == 6
    ids = dict(conns.select("src_ip", pl.col("findings").list.join(",")).unique().iter_rows())
    assert ids == {"203.0.113.129": "F1", "192.0.2.123": "F2", "203.0.113.55": "F3"}
    addresses = pl.read_parquet(folder / "addresses.parquet")
    assert {"src_ip", "class", "candidate_vms", "allowed", *SUMMARY_COLUMNS.names()} <= set(addresses.columns)
    assert addresses.height == 3 and addresses["connections"].sum() == 6
    findings = json.loads((folder / "findings.json").read_text())
    assert [list(f) for f in findings] == [FINDINGS_SCHEMA.names()] * 3
    assert [(f["id"], f["kind"], f["class"], f["address_count"], f["count"]) for f in findings] == [
        ("F1", "allowlist_miss", "default_snat", 1, 2), ("F2", "allowlist_miss", "instance_public_ip", 1, 2),
        ("F3", "unexpected_egress", "lb_frontend", 1, 2),
    ]
    evidence = json.loads((folder / "evidence.json").read_text())
    assert [Path(e["path"]).name for e in evidence] == ["webapp-vm.pcap", "auth.log", "access.log"]
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["verdict"] == verdict(demo_analysis)
    assert (summary["vms"], summary["addresses"], summary["connections"], summary["incidents"]) == (2, 3, 6, 3)
    assert summary["by_severity"] == {"high": 2, "medium": 1} and summary["first_incident"] == "F1"
    assert summary["fix_first"].startswith("Basic load balancers and Basic public IPs are retired")
    assert (folder / "report.html").read_text().startswith("<!DOCTYPE html>")


def test_report_folder_keeps_existing_files_without_force(demo_analysis, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from analyze.report import write_folder
    from capture.errors import UsageError
    from capture.output import overwriting

    folder = tmp_path / "rep"
    folder.mkdir()
    (folder / "summary.json").write_text("precious")
    with pytest.raises(UsageError, match="exists; use --force"):
        write_folder(demo_analysis, folder)
    assert (folder / "summary.json").read_text() == "precious"
    assert not (folder / "connections.parquet").exists()
    with overwriting(True):
        write_folder(demo_analysis, folder)
    assert json.loads((folder / "summary.json").read_text())["incidents"] == 3


def test_verdict_line_and_screenful_sections(demo_analysis) -> None:  # type: ignore[no-untyped-def]
    text = render(demo_analysis, "table").decode()
    first = text.splitlines()[0]
    assert first.startswith("verdict: 2 VM(s), 3 address(es), 6 connection(s): 3 incident(s) (2 high, 1 medium). "
                            "Fix first (F1): Basic load balancers")  # fmt: skip
    assert text.index("verdict:") < text.index("== findings (3)") < text.index("== addresses") < text.index("== connections")
    assert "more incident(s)" not in text and "more address(es)" not in text


def test_a_long_report_says_what_it_left_out() -> None:
    from analyze.report import SCREEN, render_text

    a = analysis()
    many = [_Finding("auth_failures", "info", (), (f"8.8.8.{i}",), f"failure {i}") for i in range(SCREEN + 5)]
    wide = pl.DataFrame({"src_ip": [f"9.9.{i // 250}.{i % 250}" for i in range(SCREEN * 3)],
                         "class": ["external"] * (SCREEN * 3), "connections": list(range(SCREEN * 3))})  # fmt: skip
    a.findings, a.addresses = many, wide
    text = render_text(a)  # type: ignore[arg-type]
    assert "... 5 more incident(s): --all, --format json, or findings.json in -o DIR/" in text
    assert f"... {SCREEN * 2} more address(es): --all, --format json, or addresses.parquet in -o DIR/" in text
    assert "9.9.0.29" in text and "9.9.0.0 " not in text  # the top addresses by connections
    full = render_text(a, full=True)  # type: ignore[arg-type]
    assert "more incident(s)" not in full and "failure 14" in full
