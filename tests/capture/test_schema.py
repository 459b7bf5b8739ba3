"""capture.schema: the record contract of DESIGN.md, declared once."""

from __future__ import annotations

import polars as pl
import pytest

from capture.schema import EGRESS_CLASS, EGRESS_VIA, EVIDENCE, PROTO, SCHEMA, SERVICE, STATE, empty_records


def test_columns_and_types_of_design_md() -> None:
    assert SCHEMA["conn_id"] == pl.String
    assert SCHEMA["ts"] == pl.Datetime("us", "UTC")
    assert SCHEMA["evidence"] == pl.List(EVIDENCE)
    assert SCHEMA["origin"] == pl.List(pl.String)
    for col in ("src_port", "dst_port"):
        assert SCHEMA[col] == pl.UInt16
    for col in ("orig_bytes", "resp_bytes", "orig_pkts", "resp_pkts"):
        assert SCHEMA[col] == pl.UInt64
    assert SCHEMA["duration"] == pl.Duration("us")
    assert SCHEMA.names()[:4] == ["conn_id", "ts", "observer", "evidence"]


def test_vocabularies_are_the_design_tables() -> None:
    assert EVIDENCE.categories.to_list() == ["pcap", "live", "authlog", "weblog", "w3c", "zeek", "flowlog"]
    assert PROTO.categories.to_list() == ["tcp", "udp", "icmp", "other"]
    assert SERVICE.categories.to_list() == ["ssh", "http", "https", "other"]
    assert STATE.categories.to_list() == [
        "attempt", "established", "rejected", "closed", "reset", "partial", "open",
    ]  # fmt: skip
    assert EGRESS_CLASS.categories.to_list() == [
        "lb_frontend", "instance_public_ip", "nat_gateway", "firewall", "default_snat",
        "private", "forced_tunnel", "none", "local", "external", "unknown",
    ]  # fmt: skip
    assert EGRESS_VIA.categories.to_list() == ["outbound_rule", "lb_rule", "nat_rule"]


def test_values_outside_a_vocabulary_raise() -> None:
    with pytest.raises(pl.exceptions.InvalidOperationError):
        pl.Series(["tcp", "sctp"]).cast(PROTO)


def test_empty_records_has_the_schema() -> None:
    assert empty_records().schema == SCHEMA and empty_records().height == 0
