"""capture.records: a records folder reads back as one table, latest row per conn_id."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from capture.errors import InputError
from capture.read import read_capture
from capture.records import read_folder

SAMPLE = str(Path(__file__).resolve().parents[2] / "pcaps" / "ethernet_vlan.pcap")


def test_latest_row_of_a_connection_wins(tmp_path: Path) -> None:
    records, _ = read_capture(SAMPLE)
    early = records.with_columns(state=pl.lit("open").cast(records.schema["state"]), orig_pkts=pl.lit(1, pl.UInt64))
    early.write_parquet(tmp_path / "records-1.parquet")
    records.write_parquet(tmp_path / "records-2.parquet")
    (tmp_path / ".records-3.parquet.tmp").write_bytes(b"half written")
    back = read_folder(tmp_path)
    assert back.height == records.height
    assert back.sort("conn_id").equals(records.sort("conn_id"))


def test_not_a_folder_and_foreign_parquet_are_input_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not a records folder"):
        read_folder(tmp_path / "missing")
    pl.DataFrame({"x": [1]}).write_parquet(tmp_path / "a.parquet")
    with pytest.raises(InputError, match=r"a\.parquet: not in the record schema \(missing conn_id"):
        read_folder(tmp_path)


def test_empty_folder_gives_an_empty_table(tmp_path: Path) -> None:
    assert read_folder(tmp_path).height == 0
