"""analyze.cli: the analyze and demo commands, formats, exit codes."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from analyze.cli import cli

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "pcaps" / "demo"
INV = ["--inventory", str(DEMO / "inventory.yaml"), "--inventory", str(DEMO / "ServiceTags_Public_lab.json")]
EVIDENCE = [str(DEMO / "webapp-vm.pcap"), str(DEMO / "auth.log"), str(DEMO / "access.log")]


def invoke(*args: str):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_demo_prints_the_diagnosis_from_the_evidence() -> None:
    result = invoke("demo")
    assert result.exit_code == 0, result.output
    out = result.stdout
    first = out.splitlines()[0]
    assert first.startswith("verdict: 2 VM(s), 3 address(es), 6 connection(s): 3 incident(s) (2 high, 1 medium). "
                            "Fix first (F1): Basic load balancers")  # fmt: skip
    assert "F1 [high] allowlist_miss: vms Test2VM; 1 address(es) 203.0.113.129; 2 connection(s)" in out
    assert "not accepted by allowlist web-app" in out
    assert "mylb has no load-balancing rule or inbound NAT rule" in out


def test_analyze_json_has_four_sections_and_classes() -> None:
    result = invoke("analyze", *INV, "--allowlist", "web-app", "--format", "json", *EVIDENCE)
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert set(doc) == {"addresses", "connections", "findings", "evidence"}
    classes = {r["src_ip"]: r["class"] for r in doc["connections"]}
    assert classes == {"203.0.113.129": "default_snat", "192.0.2.123": "instance_public_ip",
                       "203.0.113.55": "lb_frontend"}  # fmt: skip
    assert all(len(e["sha256"]) == 64 for e in doc["evidence"])


def test_fail_on_exits_1_at_or_above_the_severity() -> None:
    assert invoke("analyze", *INV, "--fail-on", "high", *EVIDENCE).exit_code == 1
    assert invoke("analyze", *INV, "--fail-on", "critical", *EVIDENCE).exit_code == 0


def test_outputs_by_extension(tmp_path: Path) -> None:
    for ext in ("json", "csv", "parquet", "html"):
        out = tmp_path / f"r.{ext}"
        assert invoke("analyze", *INV, "-o", str(out), *EVIDENCE).exit_code == 0
        assert out.stat().st_size > 0
    assert (tmp_path / "r.html").read_text().startswith("<!DOCTYPE html>")


def test_bad_inputs_are_one_line_exit_2(tmp_path: Path) -> None:
    missing = invoke("analyze", *INV, str(tmp_path / "nope.pcap"))
    assert missing.exit_code == 2 and "nope.pcap: no such file or folder" in missing.stderr
    bad_from = invoke("analyze", *INV, "--from", "Test2VM", *EVIDENCE)
    assert bad_from.exit_code == 2 and "VM=PATH" in bad_from.stderr
    bad_time = invoke("analyze", *INV, "--since", "someday", *EVIDENCE)
    assert bad_time.exit_code == 2 and "--since" in bad_time.stderr and "2 days ago" in bad_time.stderr


def test_analyze_on_the_recorded_sample_gives_its_expected_json(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    # expected.json was written by tests/lab/record_sample.py from the folder, relative names.
    monkeypatch.chdir(DEMO)
    result = invoke("analyze", "--inventory", "inventory.yaml", "--inventory", "ServiceTags_Public_lab.json",
                    "--allowlist", "web-app", "--format", "json", "webapp-vm.pcap", "auth.log", "access.log")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == json.loads((DEMO / "expected.json").read_text())


def test_every_writer_refuses_to_overwrite_without_force(tmp_path: Path) -> None:
    for ext, args in (
        ("html", ["analyze", *INV, *EVIDENCE]),
        ("json", ["predict", "--inventory", str(ROOT / "pcaps/inventory/article.yaml")]),
        ("parquet", ["logs", "read", str(DEMO / "auth.log")]),
        ("csv", ["logs", "read", str(DEMO / "access.log")]),
        ("json", ["demo"]),
    ):
        out = tmp_path / f"out.{ext}"
        out.write_text("precious")
        refused = invoke(*args, "-o", str(out))
        assert refused.exit_code == 2 and "exists; use --force" in refused.stderr, args
        assert out.read_text() == "precious"
        assert invoke(*args, "-o", str(out), "--force").exit_code == 0, args
        assert out.stat().st_size > 0 and out.read_bytes() != b"precious"


# --- issue 16: pipes, folders, outputs, exit statuses ---------------------------------------

import gzip  # noqa: E402
import os  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402

import polars as pl  # noqa: E402
import pytest  # noqa: E402

ENV = {**os.environ, "PYTHONPATH": str(ROOT)}
INVENTORY = [str(DEMO / "inventory.yaml"), str(DEMO / "ServiceTags_Public_lab.json")]


def piped(*args: str, data: bytes) -> subprocess.CompletedProcess[bytes]:
    """Run egresslens with ``data`` on stdin through a real pipe."""
    return subprocess.run([sys.executable, "-m", "analyze", *args], input=data, env=ENV,
                          capture_output=True, timeout=120)  # fmt: skip


def test_analyze_on_the_demo_folder_reads_the_capture_and_both_logs_and_skips_the_rest() -> None:
    result = invoke("analyze", *INV, "--allowlist", "web-app", "--format", "json", str(DEMO))
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    read = {(Path(e["path"]).name, e["kind"]) for e in doc["evidence"]}
    assert read == {("webapp-vm.pcap", "pcap"), ("auth.log", "log"), ("access.log", "log")}
    assert "skipped 4 file(s) that are not evidence (README.md, ServiceTags_Public_lab.json, expected.json, inventory.yaml)" in result.stderr
    assert len(doc["connections"]) == 6


def test_an_unreadable_file_among_others_is_3_strict_is_2_and_findings_beat_it(tmp_path: Path) -> None:
    bad = tmp_path / "notes.txt"
    bad.write_text("nothing a log reader knows\n")
    partial = invoke("analyze", *INV, *EVIDENCE, str(bad))
    assert partial.exit_code == 3
    assert "notes.txt: cannot tell the log type" in partial.stderr and "6 connection(s)" in partial.stderr
    assert invoke("analyze", *INV, "--strict", *EVIDENCE, str(bad)).exit_code == 2
    assert invoke("analyze", *INV, "--fail-on", "high", *EVIDENCE, str(bad)).exit_code == 1  # 1 beats 3
    nothing = invoke("analyze", *INV, "--fail-on", "high", str(bad))
    assert nothing.exit_code == 2 and nothing.stdout == ""  # nothing could be read: 2 beats 1


def test_a_truncated_capture_is_status_3() -> None:
    result = invoke("analyze", *INV, str(ROOT / "tests" / "data" / "truncated.pcap"), str(DEMO / "auth.log"))
    assert result.exit_code == 3 and "truncated after 5 packets" in result.stderr


def test_analyze_csv_and_parquet_are_the_connections_and_what_picks_another_table(tmp_path: Path) -> None:
    conns = pl.read_csv(invoke("analyze", *INV, "--format", "csv", *EVIDENCE).stdout.encode())
    assert conns.height == 6 and {"class", "src_ip", "origin"} <= set(conns.columns)
    invoke("analyze", *INV, "-o", str(tmp_path / "c.parquet"), *EVIDENCE)
    parquet = pl.read_parquet(tmp_path / "c.parquet")
    assert parquet.height == 6
    # incident ids per connection (issue 10)
    assert parquet.schema["findings"] == pl.List(pl.String)
    assert parquet.filter(pl.col("src_ip") == "203.0.113.129")["findings"].list.len().min() >= 1
    findings = pl.read_csv(invoke("analyze", *INV, "--what", "findings", "--format", "csv", *EVIDENCE).stdout.encode())
    assert findings.height == 3 and "allowlist_miss" in findings["kind"].to_list()
    addresses = invoke("analyze", *INV, "--what", "addresses", "--format", "json", *EVIDENCE)
    assert sorted(r["src_ip"] for r in json.loads(addresses.stdout)) == ["192.0.2.123", "203.0.113.129", "203.0.113.55"]


def test_analyze_o_folder_is_the_report_folder(tmp_path: Path) -> None:
    folder = tmp_path / "anrec"
    result = invoke("analyze", *INV, "-o", f"{folder}/", *EVIDENCE)
    assert result.exit_code == 0, result.output
    assert folder.is_dir() and any(folder.iterdir())
    tables = {p.stem: p for p in folder.glob("*.parquet")}
    assert pl.read_parquet(tables["connections"]).height == 6


@pytest.mark.parametrize(
    "args",
    [
        ["predict", "--inventory", str(ROOT / "pcaps/inventory/article.yaml")],
        ["analyze", *INV, *EVIDENCE],
        ["logs", "read", str(DEMO / "auth.log")],
        ["inventory", "show", str(DEMO / "inventory.yaml")],
    ],
    ids=["predict", "analyze", "logs-read", "inventory-show"],
)
def test_o_json_is_a_usage_error_that_suggests_format(args: list[str], tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.chdir(tmp_path)
    for out in ("json", "x.xlsx"):
        result = invoke(*args, "-o", out)
        assert result.exit_code == 2 and "--format" in result.stderr, (out, result.stderr)
    assert list(tmp_path.iterdir()) == []


def test_inventory_show_takes_o_and_stdin_yaml_and_gzip_json(tmp_path: Path) -> None:
    out = tmp_path / "inv.json"
    assert invoke("inventory", "show", str(DEMO / "inventory.yaml"), "-o", str(out)).exit_code == 0
    from_file = json.loads(out.read_text())
    assert from_file["vms"] and from_file["warnings"] == []
    yaml_in = piped("inventory", "show", "-", "--format", "json", data=(DEMO / "inventory.yaml").read_bytes())
    assert yaml_in.returncode == 0, yaml_in.stderr
    from_stdin = json.loads(yaml_in.stdout)
    named = str(DEMO / "inventory.yaml")
    for table, rows in from_file.items():
        for row in rows if table != "warnings" else []:
            if "source" in row:
                row["source"] = row["source"].replace(named, "stdin")
    assert from_stdin == from_file and from_stdin["vms"][0]["source"] == "stdin: $.vms[0]"
    tags = gzip.compress((DEMO / "ServiceTags_Public_lab.json").read_bytes())
    json_in = piped("inventory", "show", "-", "--format", "json", data=tags)
    assert json_in.returncode == 0, json_in.stderr
    assert json.loads(json_in.stdout)["service_tags"]
    broken = piped("inventory", "show", "-", data=b"{not json")
    assert broken.returncode == 2 and b"stdin" in broken.stderr and b"/tmp" not in broken.stderr


def test_logs_read_stdin_through_a_real_pipe_is_named_stdin_gzip_too() -> None:
    plain = (DEMO / "auth.log").read_bytes()
    for data in (plain, gzip.compress(plain)):
        result = piped("logs", "read", "-", "--format", "ndjson", data=data)
        assert result.returncode == 0, result.stderr
        rows = [json.loads(line) for line in result.stdout.splitlines()]
        assert len(rows) == 3 and all(r["origin"][0].startswith("stdin:") for r in rows)
        assert rows[0]["conn_id"].startswith("authlog:stdin:")


def test_analyze_reads_journal_json_from_stdin() -> None:
    journal = (ROOT / "tests" / "data" / "logs" / "journal.json").read_bytes()
    result = piped("analyze", "--inventory", INVENTORY[0], "--format", "json", "-", data=journal)
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert [(e["path"], e["log_type"]) for e in doc["evidence"]] == [("stdin", "journal")]
    assert doc["connections"] and all(c["origin"][0].startswith("stdin:") for c in doc["connections"])


def test_logs_read_walks_a_folder_and_reads_a_records_folder(tmp_path: Path) -> None:
    result = invoke("logs", "read", str(DEMO), "--format", "json")
    assert result.exit_code == 0, result.output
    assert {r["evidence"][0] for r in json.loads(result.stdout)} == {"authlog", "weblog"}
    assert "skipped 5 file(s) that are not evidence" in result.stderr
    folder = tmp_path / "rec"
    assert invoke("logs", "read", str(DEMO / "auth.log"), "-o", f"{folder}/").exit_code == 0
    assert len(list(folder.glob("records-*.parquet"))) == 1
    back = invoke("logs", "read", str(folder), "--format", "json")
    assert back.exit_code == 0 and len(json.loads(back.stdout)) == 3
    assert invoke("capture", "read", f"{folder}/", "--format", "json").exit_code == 0
    analyzed = invoke("analyze", *INV, "--format", "json", str(folder))
    assert analyzed.exit_code == 0 and len(json.loads(analyzed.stdout)["connections"]) == 3


def test_logs_read_one_bad_file_among_others_is_3_alone_is_2(tmp_path: Path) -> None:
    bad = tmp_path / "x.txt"
    bad.write_text("???\n")
    mixed = invoke("logs", "read", str(bad), str(DEMO / "auth.log"), "--format", "json")
    assert mixed.exit_code == 3 and len(json.loads(mixed.stdout)) == 3
    assert "x.txt: cannot tell the log type" in mixed.stderr
    alone = invoke("logs", "read", str(bad))
    assert alone.exit_code == 2 and alone.stdout == ""
    assert invoke("logs", "read", "--type", "authlog", str(bad)).exit_code == 0  # --type reads it


def test_a_gzip_log_cut_short_is_3(tmp_path: Path) -> None:
    cut = tmp_path / "auth.log.2.gz"
    cut.write_bytes(gzip.compress((DEMO / "auth.log").read_bytes())[:-30])
    result = invoke("logs", "read", str(cut), "--format", "json")
    assert result.exit_code == 3 and "cut short" in result.stderr


def test_rejects_with_strict_are_1() -> None:
    garbage = ROOT / "tests" / "data" / "logs" / "auth_mixed_garbage.log"
    assert invoke("logs", "read", str(garbage), "--format", "json").exit_code == 0
    assert invoke("logs", "read", str(garbage), "--format", "json", "--strict").exit_code == 1


def test_follow_ids_are_those_of_logs_read_and_garbage_is_one_line_and_2(tmp_path: Path) -> None:
    plain = json.loads(invoke("logs", "read", str(DEMO / "auth.log"), "--format", "json").stdout)
    followed = invoke("logs", "read", "--follow", "--duration", "1s", str(DEMO / "auth.log"))
    rows = [json.loads(line) for line in followed.stdout.splitlines()]
    assert [r["conn_id"] for r in rows] == [r["conn_id"] for r in plain]
    assert [r["origin"] for r in rows] == [r["origin"] for r in plain]
    garbage = tmp_path / "garbage.log"
    garbage.write_bytes(os.urandom(2000).hex().encode() + b"\n")
    for args in (["logs", "read", "--follow", "--duration", "5s"],
                 ["watch", "--inventory", INVENTORY[0], "--from-start", "--duration", "5s"]):  # fmt: skip
        result = subprocess.run([sys.executable, "-m", "analyze", *args, str(garbage)], env=ENV,
                                capture_output=True, text=True, timeout=60)  # fmt: skip
        assert result.returncode == 2, (args, result.stderr)
        errors = [line for line in result.stderr.splitlines() if line.startswith("Error: ")]
        assert len(errors) == 1 and "garbage.log: cannot tell the log type" in errors[0]
        assert "Traceback" not in result.stderr


def test_file_modes_follow_the_umask_for_every_format(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        for ext in ("csv", "json", "parquet"):
            assert invoke("logs", "read", str(DEMO / "auth.log"), "-o", str(tmp_path / f"a.{ext}")).exit_code == 0
        assert invoke("analyze", *INV, "-o", str(tmp_path / "r.html"), *EVIDENCE).exit_code == 0
    finally:
        os.umask(old)
    assert {p.name: oct(p.stat().st_mode & 0o777) for p in tmp_path.iterdir()} == dict.fromkeys(
        ("a.csv", "a.json", "a.parquet", "r.html"), "0o644")  # fmt: skip


def test_a_folder_without_evidence_is_2_and_follow_takes_type(tmp_path: Path) -> None:
    (tmp_path / "README.md").write_text("# nothing here\n")
    for args in (["analyze", *INV, str(tmp_path)], ["logs", "read", str(tmp_path)]):
        result = invoke(*args)
        assert result.exit_code == 2 and "no " in result.stderr and "found" in result.stderr, args
    (tmp_path / "lead.txt").write_text("a first line no detector knows\n" + (DEMO / "auth.log").read_text())
    followed = invoke("logs", "read", "--follow", "--duration", "1s", "--type", "authlog", str(tmp_path / "lead.txt"))
    assert followed.exit_code == 0 and len(followed.stdout.splitlines()) == 3
