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
    bad_time = invoke("analyze", *INV, "--since", "yesterday", *EVIDENCE)
    assert bad_time.exit_code == 2 and "--since" in bad_time.stderr


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
