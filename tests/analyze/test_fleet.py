"""A fleet's store on Azure Blob (Azurite) and analyzed on Ray: the same answer everywhere.

Azurite (npm, installed by ``make azurite`` into ``.cache/azurite``) is started by a session
fixture on 127.0.0.1 with a free port and a temporary data folder, and stopped after.
One session-scoped Ray cluster (``ray.init(num_cpus=2)``, in-process) serves every Ray
test; ``ray start`` / ``ray stop`` are never run (they end every Ray process on the machine).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path

import polars as pl
import pytest
from click.testing import CliRunner
from polars.testing import assert_frame_equal

from analyze.cli import cli
from analyze.fleet import OBJECT_STORE_BYTES, RAY_ENV, TASK_ENV, StoreRun, analyze_store
from analyze.pipeline import Analysis, run
from analyze.store import Store, ingest
from capture.errors import UsageError
from tests.analyze.fleet_factory import GUESSER, INVENTORY, SNAT_DAY1, SNAT_DAY2, make_fleet

ROOT = Path(__file__).resolve().parents[2]
AZURITE = ROOT / ".cache" / "azurite" / "node_modules" / "azurite" / "dist" / "src" / "blob" / "main.js"
ACCOUNT = "devstoreaccount1"
# Azurite's well-known development account key (public, documented by Microsoft).
KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
HOSTS = ["web1", "web2", "web3", "db1", "db2", "db3"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """Azurite's blob service; yields the AZURE_* environment that reaches it."""
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed: no Azurite (the Azure Storage emulator) to test against")
    assert AZURITE.exists(), f"Azurite is not installed: run `make azurite` ({AZURITE} missing)"
    port = _free_port()
    data = tmp_path_factory.mktemp("azurite")
    proc = subprocess.Popen(
        [node, str(AZURITE), "--blobHost", "127.0.0.1", "--blobPort", str(port), "--location", str(data),
         "--silent", "--loose", "--skipApiVersionCheck", "--disableTelemetry"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"Azurite did not start: {proc.stderr.read().decode()[-500:]}") from None  # type: ignore[union-attr]
                time.sleep(0.2)
        yield {
            "AZURE_STORAGE_ACCOUNT_NAME": ACCOUNT,
            "AZURE_STORAGE_ACCOUNT_KEY": KEY,
            "AZURE_STORAGE_ENDPOINT": f"http://127.0.0.1:{port}/{ACCOUNT}",
        }
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="session")
def ray_cluster() -> Iterator[object]:
    """One local Ray cluster for the session: 2 CPUs, no dashboard, a small object store."""
    ray = pytest.importorskip("ray", reason="Ray is the `fleet` extra: pip install 'egresslens[fleet]'")
    saved = {k: os.environ.get(k) for k in RAY_ENV}
    os.environ.update(RAY_ENV)
    ray.init(
        num_cpus=2, include_dashboard=False, object_store_memory=OBJECT_STORE_BYTES,
        runtime_env={"env_vars": {**TASK_ENV, "PYTHONPATH": str(ROOT)}}, log_to_driver=False,
    )  # fmt: skip
    try:
        yield ray
    finally:
        ray.shutdown()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return make_fleet(tmp_path_factory.mktemp("fleet"), HOSTS, days=2)


@pytest.fixture(scope="module")
def raw(fleet: dict[str, Path]) -> Analysis:
    return run([str(f) for f in fleet.values()], INVENTORY, allowlist="web-app")


@pytest.fixture(scope="module")
def local_store(fleet: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> str:
    st = Store.open(str(tmp_path_factory.mktemp("store") / "fleet"))
    for h, folder in fleet.items():
        ingest([str(folder)], st, observer=h)
    return st.url


@pytest.fixture(scope="module")
def azure_store(fleet: dict[str, Path], azurite: dict[str, str]) -> Iterator[str]:
    """The fleet ingested by the CLI into abfs://fleet/store, credentials from the environment."""
    url = "abfs://fleet/store"
    mp = pytest.MonkeyPatch()
    for k, v in azurite.items():
        mp.setenv(k, v)
    runner = CliRunner()
    for h, folder in fleet.items():
        res = runner.invoke(cli, ["ingest", str(folder), "--store", url, "--observer", h])
        assert res.exit_code == 0, res.output
    try:
        yield url
    finally:
        mp.undo()


def assert_same(a: Analysis, b: Analysis) -> None:
    assert_frame_equal(a.connections.sort("observer", "conn_id"), b.connections.sort("observer", "conn_id"))
    assert_frame_equal(a.addresses.sort("src_ip"), b.addresses.sort("src_ip"))
    assert [asdict(f) for f in a.findings] == [asdict(f) for f in b.findings]


def test_the_fleet_has_the_cases_the_engines_must_agree_on(raw: Analysis) -> None:
    kinds = {f.kind: f for f in raw.findings}
    assert set(kinds["egress_ip_changed"].src_ips) == {SNAT_DAY1, SNAT_DAY2}
    assert kinds["auth_failures"].src_ips == (GUESSER,)
    midnight = raw.connections.filter(pl.col("src_port") == 45999)
    assert midnight.height == 1 and midnight["ssh_user"][0] == "night"
    assert set(raw.connections["observer"]) == set(HOSTS)


# --- Azure Blob (Azurite) -------------------------------------------------------------


def test_azurite_round_trip_equals_the_raw_files(azure_store: str, raw: Analysis, azurite: dict[str, str],
                                                 monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    for k, v in azurite.items():
        monkeypatch.setenv(k, v)
    st = Store.open(azure_store)
    assert st.remote and st.options["account_name"] == ACCOUNT
    names = st.list("observer=web1")
    assert names and all(n.startswith("observer=web1/date=2026-11-2") and "/part-" in n for n in names)
    assert len(st.manifests()) == 3 * len(HOSTS)
    assert_same(analyze_store(azure_store, INVENTORY, allowlist="web-app"), raw)
    pruned = StoreRun()
    a = analyze_store(azure_store, INVENTORY, hosts=["db2"], stats=pruned)
    assert set(a.connections["observer"]) == {"db2"} and pruned.partitions == 1 and pruned.files_read == 4


def test_azurite_reingest_is_a_noop(azure_store: str, fleet: dict[str, Path], azurite: dict[str, str],
                                    monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    for k, v in azurite.items():
        monkeypatch.setenv(k, v)
    st = Store.open(azure_store)
    before = {n: st.fs.info(st._blob_path(n))["etag"] for n in st.list("")}
    again = ingest([str(fleet["web2"])], st, observer="web2")
    assert again.written == [] and len(again.skipped) == 3
    assert {n: st.fs.info(st._blob_path(n))["etag"] for n in st.list("")} == before


def test_azure_credentials_come_from_the_environment() -> None:
    from analyze.store import azure_options

    conn = f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={KEY};BlobEndpoint=http://127.0.0.1:1/{ACCOUNT};"
    assert azure_options({"AZURE_STORAGE_CONNECTION_STRING": conn}) == {
        "account_name": ACCOUNT, "account_key": KEY, "endpoint": f"http://127.0.0.1:1/{ACCOUNT}", "allow_http": "true",
    }  # fmt: skip
    assert azure_options({"AZURE_STORAGE_ACCOUNT": "acct", "AZURE_STORAGE_SAS_TOKEN": "?sv=1&sig=x"}) == {
        "account_name": "acct", "sas_token": "sv=1&sig=x",
    }  # fmt: skip
    assert azure_options({}) == {}


# --- Ray ------------------------------------------------------------------------------


def test_ray_equals_local_equals_raw_files_on_two_workers(local_store: str, raw: Analysis, ray_cluster: object) -> None:
    local = StoreRun()
    by_local = analyze_store(local_store, INVENTORY, allowlist="web-app", stats=local)
    on_ray = StoreRun()
    by_ray = analyze_store(local_store, INVENTORY, allowlist="web-app", engine="ray", stats=on_ray)
    assert_same(by_local, raw)
    assert_same(by_ray, by_local)
    assert on_ray.partitions == local.partitions == len(HOSTS)
    assert local.pids == {os.getpid()}
    assert os.getpid() not in on_ray.pids and len(on_ray.pids) >= 2, on_ray.pids
    assert on_ray.offsets == local.offsets


def test_ray_on_an_azurite_store(azure_store: str, raw: Analysis, ray_cluster: object, azurite: dict[str, str],
                                 monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    for k, v in azurite.items():
        monkeypatch.setenv(k, v)
    on_ray = StoreRun()
    assert_same(analyze_store(azure_store, INVENTORY, allowlist="web-app", engine="ray", stats=on_ray), raw)
    assert len(on_ray.pids) >= 2


def test_cli_analyze_store_engine_ray(local_store: str, raw: Analysis, ray_cluster: object, tmp_path: Path) -> None:
    inv = [a for src in INVENTORY for a in ("--inventory", src)]
    res = CliRunner().invoke(cli, ["analyze", "--store", local_store, "--engine", "ray", *inv, "--format", "json",
                                   "-o", str(tmp_path / "r.json")])  # fmt: skip
    assert res.exit_code == 0, res.output
    assert f"{raw.connections.height:,} connection(s)" in res.output


def test_a_local_store_with_a_remote_cluster_is_refused(local_store: str) -> None:
    with pytest.raises(UsageError, match="workers cannot read it"):
        analyze_store(local_store, INVENTORY, engine="ray", ray_address="ray://10.0.0.1:10001")
