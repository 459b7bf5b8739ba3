"""analyze.store + analyze.fleet (local): ingest a fleet's evidence, analyze the store."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import shutil
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path

import polars as pl
import pytest
from click.testing import CliRunner
from polars.testing import assert_frame_equal

from analyze.cli import cli
from analyze.fleet import StoreRun, analyze_store
from analyze.pipeline import Analysis, run
from analyze.store import Store, ingest, partitions
from capture.errors import InputError
from tests.analyze.fleet_factory import GUESSER, INVENTORY, SNAT_DAY1, SNAT_DAY2, make_fleet

ROOT = Path(__file__).resolve().parents[2]
HOSTS = ["web1", "web2", "db1", "db2"]


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return make_fleet(tmp_path_factory.mktemp("fleet"), HOSTS, days=2)


@pytest.fixture(scope="module")
def raw(fleet: dict[str, Path]) -> Analysis:
    return run([str(f) for f in fleet.values()], INVENTORY, allowlist="web-app")


@pytest.fixture(scope="module")
def store(fleet: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Store:
    st = Store.open(str(tmp_path_factory.mktemp("store") / "fleet"))
    for host, folder in fleet.items():
        ingest([str(folder)], st, observer=host)
    return st


def snapshot(root: Path) -> dict[str, str]:
    """Every file under ``root`` (hidden ones too) -> sha256 of its bytes."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*")) if p.is_file()
    }  # fmt: skip


def rows(a: Analysis) -> pl.DataFrame:
    return a.connections.sort("observer", "conn_id")


def findings(a: Analysis) -> list[dict[str, object]]:
    return [asdict(f) for f in a.findings]


# --- ingest ---------------------------------------------------------------------------


def test_layout_is_hive_partitioned_with_one_manifest_per_evidence(store: Store, fleet: dict[str, Path]) -> None:
    root = Path(store.url)
    parts = sorted(str(p.relative_to(root)) for p in root.glob("observer=*/date=*/part-*.parquet"))
    assert {p.split("/")[0] for p in parts} == {f"observer={h}" for h in HOSTS}
    assert {p.split("/")[1] for p in parts} == {"date=2026-11-20", "date=2026-11-21"}
    manifests = store.manifests()
    # Two captures and one auth.log per host.
    assert len(manifests) == 3 * len(HOSTS)
    m = next(m for m in manifests if m.observer == "web1" and m.path.endswith("auth.log"))
    assert m.sha256 == hashlib.sha256((fleet["web1"] / "auth.log").read_bytes()).hexdigest()
    assert m.size == (fleet["web1"] / "auth.log").stat().st_size
    assert m.kind == "log" and m.log_type is not None and m.records > 0 and m.version
    assert [p[1] for p in m.parts] == ["2026-11-20", "2026-11-21"]
    assert all(p[0] == f"observer=web1/date={p[1]}/part-{m.sha256}.parquet" for p in m.parts)
    assert sum(p[2] for p in m.parts) == m.records
    assert json.loads((root / "_manifest" / "observer=web1" / f"{m.sha256}.json").read_text())["path"] == m.path


def test_reingest_is_a_noop_with_the_same_store_bytes(fleet: dict[str, Path], tmp_path: Path) -> None:
    st = Store.open(str(tmp_path / "s"))
    first = ingest([str(fleet["web1"])], st, observer="web1")
    before = snapshot(tmp_path / "s")
    again = ingest([str(fleet["web1"])], st, observer="web1")
    assert len(first.written) == 3 and again.written == []
    assert sorted(p for _, p in again.skipped) == sorted(str(p) for p in fleet["web1"].iterdir())
    assert snapshot(tmp_path / "s") == before


def test_the_same_files_for_eight_observers_are_eight_observers_evidence(fleet: dict[str, Path], tmp_path: Path) -> None:
    hosts = [f"vm{i}" for i in range(8)]
    for h in hosts:  # the same bytes in a plain folder per host, as a user has them
        shutil.copytree(fleet["web1"], tmp_path / "ev" / h)
    url = str(tmp_path / "s")
    runner = CliRunner()
    for h in hosts:
        res = runner.invoke(cli, ["ingest", str(tmp_path / "ev" / h), "--store", url, "--observer", h])
        assert res.exit_code == 0, res.output
        assert "ingested 3 evidence files" in res.output
    res = runner.invoke(cli, ["ingest", str(tmp_path / "ev" / "vm3"), "--store", url, "--observer", "vm3"])
    assert res.exit_code == 0 and "already in the store for observer vm3" in res.output
    one = run([str(fleet["web1"])], INVENTORY).connections.height
    a = analyze_store(url, INVENTORY)
    # --observer overrode the host name on the log lines: every record is its host's.
    assert dict(a.connections.group_by("observer").len().iter_rows()) == {h: one for h in hosts}
    assert len({m.sha256 for m in Store.open(url).manifests()}) == 3


def test_records_without_an_observer_are_refused(fleet: dict[str, Path], tmp_path: Path) -> None:
    pcap = fleet["web1"] / "capture-2026-11-20.pcap"
    with pytest.raises(InputError, match=r"capture-2026-11-20\.pcap: .* records name no observer .*--observer"):
        ingest([str(pcap)], Store.open(str(tmp_path / "s")))
    assert not (tmp_path / "s" / "_manifest").exists()


def test_without_observer_a_log_keeps_its_host_names(fleet: dict[str, Path], tmp_path: Path) -> None:
    st = Store.open(str(tmp_path / "s"))
    ingest([str(fleet["web2"] / "auth.log")], st)
    assert [m.observer for m in st.manifests()] == ["web2"]


def test_stdin_is_ingested_under_its_sha256(fleet: dict[str, Path], tmp_path: Path) -> None:
    st = Store.open(str(tmp_path / "s"))
    data = (fleet["web1"] / "auth.log").read_bytes()
    import io

    result = ingest(["-"], st, observer="web1", stdin=io.BytesIO(data))
    assert [(m.path, m.sha256) for m in result.written] == [("-", hashlib.sha256(data).hexdigest())]


def test_a_bad_observer_name_is_refused(tmp_path: Path, fleet: dict[str, Path]) -> None:
    with pytest.raises(InputError, match=r"observer '\.\./x' is not a host name"):
        ingest([str(fleet["web1"])], Store.open(str(tmp_path / "s")), observer="../x")


_INGEST_SCRIPT = """
import sys
from analyze.store import Store, ingest
st = Store.open(sys.argv[1])
for pair in sys.argv[2:]:
    host, folder = pair.split("=", 1)
    ingest([folder], st, observer=host)
"""


def test_two_concurrent_ingests_lose_and_duplicate_nothing(fleet: dict[str, Path], tmp_path: Path) -> None:
    url = str(tmp_path / "s")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    a = [f"{h}={fleet[h]}" for h in ("web1", "web2", "db1")]
    b = [f"{h}={fleet[h]}" for h in ("db1", "web2", "db2")]  # overlapping, other order
    procs = [subprocess.Popen([sys.executable, "-c", _INGEST_SCRIPT, url, *args], env=env) for args in (a, b)]
    assert [p.wait(timeout=300) for p in procs] == [0, 0]
    st = Store.open(url)
    manifests = st.manifests()
    assert sorted({m.observer for m in manifests}) == sorted(HOSTS)
    assert len(manifests) == 3 * len(HOSTS)
    stored = pl.read_parquet([st.uri(rel) for m in manifests for rel, _, _ in m.parts])
    assert stored.height == sum(m.records for m in manifests)
    assert stored.select("observer", "conn_id").is_duplicated().sum() == 0
    assert not list(Path(url).rglob(".*"))  # no temporary file left
    single = Store.open(str(tmp_path / "one"))
    for h in HOSTS:
        ingest([str(fleet[h])], single, observer=h)
    assert_frame_equal(rows(analyze_store(url, INVENTORY)), rows(analyze_store(single.url, INVENTORY)))


_KILL_SCRIPT = """
import os, signal, sys
from analyze import store
when = sys.argv[3]
real_replace = os.replace
def replace(src, dst):
    if when == "rename" or (when == "manifest" and "_manifest" in str(dst)):
        os.kill(os.getpid(), signal.SIGKILL)  # a part's bytes are written, not yet renamed
    real_replace(src, dst)
store.os.replace = replace
store.ingest([sys.argv[2]], store.Store.open(sys.argv[1]), observer="web1")
"""


@pytest.mark.parametrize("when", ["rename", "manifest"])
def test_a_killed_ingest_leaves_no_visible_part(fleet: dict[str, Path], tmp_path: Path, when: str) -> None:
    url = str(tmp_path / "s")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-c", _KILL_SCRIPT, url, str(fleet["web1"]), when], env=env, timeout=300)
    assert proc.returncode == -9
    st = Store.open(url)
    assert st.manifests() == []
    assert analyze_store(url, INVENTORY).connections.height == 0
    written = list(Path(url).rglob("*.parquet*"))
    assert written  # it did write something before it was killed ...
    if when == "rename":  # ... under a hidden temporary name
        assert all(p.name.startswith(".") for p in written)
    # The next ingest completes it; orphans are overwritten, not counted twice.
    ingest([str(fleet["web1"])], st, observer="web1")
    expected = run([str(fleet["web1"])], INVENTORY).connections.height
    assert analyze_store(url, INVENTORY).connections.height == expected


# --- analyze --store ------------------------------------------------------------------


def test_analyze_store_equals_analyze_on_the_raw_files(store: Store, raw: Analysis) -> None:
    a = analyze_store(store.url, INVENTORY, allowlist="web-app")
    assert_frame_equal(rows(a), rows(raw))
    assert_frame_equal(a.addresses.sort("src_ip"), raw.addresses.sort("src_ip"))
    assert findings(a) == findings(raw)
    kinds = {f.kind for f in a.findings}
    assert {"egress_ip_changed", "auth_failures", "allowlist_miss"} <= kinds
    changed = next(f for f in a.findings if f.kind == "egress_ip_changed")
    assert set(changed.src_ips) == {SNAT_DAY1, SNAT_DAY2}
    guess = next(f for f in a.findings if f.kind == "auth_failures")
    assert guess.src_ips == (GUESSER,) and guess.count == 34  # both hosts' failures


def test_a_connection_spanning_midnight_is_merged_across_date_partitions(store: Store) -> None:
    log_parts = [
        rel for m in store.manifests() if m.observer == "web1" and m.kind == "log"
        for rel, day, _ in m.parts if day == "2026-11-21"
    ]  # fmt: skip
    logged = pl.read_parquet([store.uri(r) for r in log_parts]).filter(pl.col("src_port") == 45999)
    assert logged.height == 1 and logged["ts"][0].date() == dt.date(2026, 11, 21)
    a = analyze_store(store.url, INVENTORY, hosts=["web1"])
    row = a.connections.filter(pl.col("src_port") == 45999)
    assert row.height == 1
    assert row["ts"][0] == dt.datetime(2026, 11, 20, 23, 59, 59, 990000, tzinfo=dt.UTC)
    assert sorted(row["evidence"][0]) == ["authlog", "pcap"] and row["ssh_user"][0] == "night"


def test_the_clock_offset_is_estimated_per_observer(tmp_path: Path) -> None:
    offsets = {"fast": dt.timedelta(milliseconds=300), "slow": dt.timedelta(milliseconds=-200)}
    folders = make_fleet(tmp_path / "ev", list(offsets), days=1, offsets=offsets)
    st = Store.open(str(tmp_path / "s"))
    for h, f in folders.items():
        ingest([str(f)], st, observer=h)
    stats = StoreRun()
    a = analyze_store(st.url, INVENTORY, stats=stats)
    assert stats.offsets == offsets
    assert any(n.startswith("fast: clock offset logs - capture: +0.300 s") for n in a.notes)
    assert any(n.startswith("slow: clock offset logs - capture: -0.200 s") for n in a.notes)
    # Each host's SSH connections met their log lines despite the two clocks.
    assert a.connections.filter(pl.col("service") == "ssh")["ssh_user"].null_count() == 0


def test_hosts_and_since_prune_partitions(store: Store, raw: Analysis) -> None:
    everything = StoreRun()
    analyze_store(store.url, INVENTORY, stats=everything)
    some = StoreRun()
    a = analyze_store(store.url, INVENTORY, hosts=["web1", "db2"], stats=some)
    assert some.files_read < everything.files_read and some.partitions == 2
    assert set(a.connections["observer"]) == {"web1", "db2"}
    whole = rows(analyze_store(store.url, INVENTORY))
    # The same rows; the incident ids (``findings``) number the incidents of each analysis.
    assert_frame_equal(rows(a).drop("findings"), whole.filter(pl.col("observer").is_in(["web1", "db2"])).drop("findings"))
    since = dt.datetime(2026, 11, 21, 6, tzinfo=dt.UTC)
    late = StoreRun()
    b = analyze_store(store.url, INVENTORY, allowlist="web-app", since=since, stats=late)
    assert late.files_read < everything.files_read
    expected = run([str(Path(m)) for m in {str(Path(x.path).parent) for x in store.manifests()}],
                   INVENTORY, allowlist="web-app", since=since)  # fmt: skip
    assert_frame_equal(rows(b), rows(expected))
    assert b.connections["ts"].min() >= since


def test_partitions_read_only_what_manifests_list(store: Store) -> None:
    parts, manifests = partitions(store, hosts=["db1"], until=dt.datetime(2026, 11, 20, 12, tzinfo=dt.UTC))
    assert [p.observer for p in parts] == ["db1"]
    assert all("date=2026-11-20" in rel for rel in parts[0].parts)
    assert {m.observer for m in manifests} == {"db1"}


def test_cli_ingest_then_analyze_store(fleet: dict[str, Path], tmp_path: Path, raw: Analysis) -> None:
    url = str(tmp_path / "s")
    runner = CliRunner()
    for h in HOSTS:
        assert runner.invoke(cli, ["ingest", str(fleet[h]), "--store", url, "--observer", h]).exit_code == 0
    inv = [a for src in INVENTORY for a in ("--inventory", src)]
    out = tmp_path / "r.json"
    res = runner.invoke(cli, ["analyze", "--store", url, *inv, "--allowlist", "web-app", "-o", str(out)])
    assert res.exit_code == 0, res.output
    assert f"{raw.connections.height:,} connection(s)" in res.output
    assert "web1: clock offset logs - capture: +0.040 s" in res.output
    doc = json.loads(out.read_text())
    assert len(doc["findings"]) == len(raw.findings)
    res = runner.invoke(cli, ["analyze", "--store", url, *inv, str(fleet["web1"])])
    assert res.exit_code == 2 and "not both" in res.output
    res = runner.invoke(cli, ["analyze", *inv, "--hosts", "web1", str(fleet["web1"])])
    assert res.exit_code == 2 and "--hosts needs --store" in res.output


def test_a_store_with_nothing_says_so(tmp_path: Path) -> None:
    a = analyze_store(str(tmp_path / "empty"), INVENTORY)
    assert a.connections.height == 0
    assert any("holds no evidence" in n for n in a.notes)


def test_unknown_scheme_is_refused() -> None:
    from capture.errors import UsageError

    with pytest.raises(UsageError, match="s3://b/x.*abfs://"):
        Store.open("s3://b/x")


# --- capture live --store -------------------------------------------------------------


def test_capture_live_writes_its_rotations_into_a_store(tmp_path: Path) -> None:
    from capture.read import read_captures

    pcap = ROOT / "pcaps" / "demo" / "webapp-vm.pcap"
    url = str(tmp_path / "s")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "analyze", "capture", "live", "--replay", str(pcap), "--store", url,
           "--observer", "web9", "--no-pcap"]  # fmt: skip
    assert subprocess.run(cmd, env=env, capture_output=True, timeout=120).returncode == 0
    st = Store.open(url)
    assert [m.observer for m in st.manifests()] == ["web9"]
    parts, _ = partitions(st)
    from analyze.store import read_partition

    stored = read_partition(st, parts[0])
    expected = read_captures([str(pcap)]).records
    key = ["ts", "src_ip", "src_port", "dst_port", "service", "orig_bytes", "resp_bytes"]
    assert_frame_equal(stored.select(key).sort(key), expected.select(key).sort(key))
    assert set(stored["observer"]) == {"web9"} and set(stored["evidence"].list.first()) == {"live"}


def test_a_connection_rewritten_at_each_rotation_is_one_row_the_latest(tmp_path: Path) -> None:
    from analyze.store import ingest_frame, read_partition
    from tests.analyze.records_factory import frame, make_conn

    st = Store.open(str(tmp_path / "s"))
    first = make_conn(conn_id="Clong", state="open", duration=dt.timedelta(seconds=60), evidence=["live"], orig_pkts=10)
    later = {**first, "state": "closed", "duration": dt.timedelta(seconds=95), "orig_pkts": 14}
    other = make_conn(conn_id="Cother", evidence=["live"])
    # The later rotation is ingested first: the store keeps the most complete row, not the last ingested.
    ingest_frame(st, frame(later, other), name="live:eth0#2", observer="web1")
    ingest_frame(st, frame(first), name="live:eth0#1", observer="web1")
    assert ingest_frame(st, frame(first), name="live:eth0#1", observer="web1") is None  # the same batch again
    parts, _ = partitions(st)
    got = read_partition(st, parts[0])
    assert sorted(got["conn_id"]) == ["Clong", "Cother"]
    row = got.filter(pl.col("conn_id") == "Clong")
    assert row["state"][0] == "closed" and row["duration"][0] == dt.timedelta(seconds=95)


def test_a_log_set_half_ingested_completes_without_rewriting_the_rest(fleet: dict[str, Path], tmp_path: Path) -> None:
    ev = tmp_path / "ev"
    ev.mkdir()
    (ev / "auth.log.1").write_bytes((fleet["web1"] / "auth.log").read_bytes())
    st = Store.open(str(tmp_path / "s"))
    ingest([str(ev / "auth.log.1")], st, observer="web1")
    before = snapshot(tmp_path / "s")
    (ev / "auth.log").write_bytes((fleet["web2"] / "auth.log").read_bytes())
    result = ingest([str(ev)], st, observer="web1")  # the rotated set is read whole
    assert [Path(m.path).name for m in result.written] == ["auth.log"]
    assert [Path(p).name for _, p in result.skipped] == ["auth.log.1"]
    after = snapshot(tmp_path / "s")
    assert {k: v for k, v in after.items() if k in before} == before
