"""analyze/inventory/servicetags.py: Service Tags JSON -> one row per prefix."""

from __future__ import annotations

import ipaddress
import json
from pathlib import Path

import hypothesis.strategies as st
import polars as pl
import pytest
from hypothesis import given, settings
from polars.testing import assert_frame_equal, assert_schema_equal

from analyze.inventory import SERVICE_TAGS_SCHEMA, load
from analyze.inventory.servicetags import RANGES_SCHEMA, detect, flatten, frame, rows
from analyze.inventory.servicetags import load as load_tags
from capture.errors import InventoryError

ROOT = Path(__file__).resolve().parents[3]
TAGS = ROOT / "tests" / "data" / "inventory" / "ServiceTags_Public_20260105.json"


def test_public_file() -> None:
    inv = load([TAGS])
    assert_schema_equal(inv.service_tags.schema, SERVICE_TAGS_SCHEMA)
    got = inv.service_tags.with_columns(pl.col("tag", "region", "system_service").cast(pl.String))
    # 13.64.0.0/11 = 13*2^24 + 64*2^16 = 222298112 .. +2^21-1; 13.68.0.0/17 = 222560256 .. +32767;
    # 13.68.120.64/28 = 222560256 + 120*256 + 64 = 222591040 .. +15
    expected = pl.DataFrame(
        {
            "tag": ["AzureCloud"] * 3 + ["AzureCloud.eastus2"] * 2 + ["Storage.eastus2"],
            "region": ["", "", "", "eastus2", "eastus2", "eastus2"],
            "system_service": ["", "", "", "", "", "AzureStorage"],
            "prefix": ["13.64.0.0/11", "52.224.0.0/11", "2603:1000::/24", "13.68.0.0/17",
                       "2603:1030:400::/48", "13.68.120.64/28"],
            "ip_version": [4, 4, 6, 4, 6, 4],
            "start": [222298112, 872415232 + 224 * 65536, None, 222560256, None, 222591040],
            "end": [222298112 + 2**21 - 1, 872415232 + 224 * 65536 + 2**21 - 1, None,
                    222560256 + 32767, None, 222591040 + 15],
            "prefix_len": [11, 11, 24, 17, 48, 28],
        },
        schema={**SERVICE_TAGS_SCHEMA, "tag": pl.String, "region": pl.String, "system_service": pl.String},
    )  # fmt: skip
    assert_frame_equal(got, expected)


def test_tags_containing_uses_the_most_specific_and_the_general_tags() -> None:
    inv = load([TAGS])
    assert inv.tags_containing("13.68.120.70") == {"azurecloud", "azurecloud.eastus2", "storage.eastus2"}
    assert inv.tags_containing("13.68.200.1") == {"azurecloud"}
    assert inv.tags_containing("2603:1030:400::1") == {"azurecloud", "azurecloud.eastus2"}
    assert inv.tags_containing("8.8.8.8") == frozenset()


def test_api_response_shape_with_string_change_number() -> None:
    doc = {"name": "Public", "id": "x", "type": "Microsoft.Network/serviceTags", "changeNumber": "63",
           "cloud": "China", "values": [{"name": "AzureCloud.chinanorth3", "id": "AzureCloud.chinanorth3",
           "properties": {"changeNumber": "7", "region": "chinanorth3", "addressPrefixes": ["52.130.0.0/17"]}}]}  # fmt: skip
    assert detect(doc)
    df = load_tags(doc, "api.json")
    assert df.get_column("prefix").to_list() == ["52.130.0.0/17"]


def test_bad_prefix_names_file_and_path(tmp_path: Path) -> None:
    doc = json.loads(TAGS.read_text())
    doc["values"][1]["properties"]["addressPrefixes"][1] = "13.68.0.0/40"
    path = tmp_path / "ServiceTags_Public_x.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(InventoryError, match=r"\$\.values\[1\]\.properties\.addressPrefixes\[1\]: not a CIDR"):
        load([path])


def test_flatten_gives_each_range_its_most_specific_tag() -> None:
    ranges = flatten(load([TAGS]).service_tags)
    assert_schema_equal(ranges.schema, RANGES_SCHEMA)
    # AzureCloud 13.64.0.0/11 = 222298112..224395263 holds AzureCloud.eastus2 13.68.0.0/17 =
    # 222560256..222593023, which holds Storage.eastus2 13.68.120.64/28 = 222591040..222591055
    assert ranges.select("start", "end", "tag").rows() == [
        (222298112, 222560255, "AzureCloud"),
        (222560256, 222591039, "AzureCloud.eastus2"),
        (222591040, 222591055, "Storage.eastus2"),
        (222591056, 222593023, "AzureCloud.eastus2"),
        (222593024, 224395263, "AzureCloud"),
        (887095296, 889192447, "AzureCloud"),  # 52.224.0.0/11
    ]
    assert ranges.row(2, named=True)["tags"] == ["AzureCloud", "AzureCloud.eastus2", "Storage.eastus2"]


_prefixes = st.builds(
    lambda a, n: ipaddress.ip_network(f"{ipaddress.IPv4Address(a)}/{n}", strict=False),
    st.integers(0, 2**32 - 1).map(lambda a: a & 0xFFFF0000 | (a & 0xFF)),  # clustered addresses
    st.integers(8, 30),
)


@settings(max_examples=200, deadline=None)
@given(
    nets=st.lists(st.tuples(st.sampled_from(["A", "B", "C", "D"]), _prefixes), min_size=1, max_size=12),
    probes=st.lists(st.integers(0, 2**32 - 1), min_size=1, max_size=20),
)
def test_flatten_matches_longest_prefix_match(nets: list[tuple[str, ipaddress.IPv4Network]], probes: list[int]) -> None:
    records = [r for tag, net in nets for r in rows(tag, "", "", [str(net)], "w")]
    ranges = flatten(frame(records))
    starts, ends = ranges.get_column("start").to_list(), ranges.get_column("end").to_list()
    assert all(e >= s for s, e in zip(starts, ends, strict=True))
    assert all(ends[i] < starts[i + 1] for i in range(len(starts) - 1))  # sorted, disjoint
    sample = probes + [int(net.network_address) for _, net in nets] + [int(net.broadcast_address) for _, net in nets]
    for value in sample:
        ip = ipaddress.IPv4Address(value)
        covering = [(net.prefixlen, tag) for tag, net in nets if ip in net]
        hit = ranges.filter((pl.col("start") <= value) & (pl.col("end") >= value))
        if not covering:
            assert hit.height == 0
            continue
        best = max(p for p, _ in covering)
        assert hit.height == 1
        assert hit.item(0, "tag") == min(t for p, t in covering if p == best)


# --- the vectorized prefix parser agrees with ipaddress ------------------------------------

from analyze.inventory.servicetags import parse_prefixes  # noqa: E402


def _reference(text: str) -> tuple[str | None, int | None, int | None, int | None, int | None]:
    try:
        net = ipaddress.ip_network(text.strip(), strict=False)
    except ValueError:
        return (None, None, None, None, None)
    if net.version == 4:
        return (str(net), 4, int(net.network_address), int(net.broadcast_address), net.prefixlen)
    return (None, 6, None, None, net.prefixlen)  # IPv6 text is kept as written


_v4_text = st.builds(
    lambda a, n, bare: str(ipaddress.IPv4Address(a)) + ("" if bare else f"/{n}"),
    st.integers(0, 2**32 - 1), st.integers(0, 32), st.booleans(),
)  # fmt: skip
_v6_text = st.builds(
    lambda a, n, full: (ipaddress.IPv6Address(a).exploded if full else str(ipaddress.IPv6Address(a))) + f"/{n}",
    st.integers(0, 2**128 - 1), st.integers(0, 128), st.booleans(),
)  # fmt: skip
_junk = st.sampled_from(
    ["", "1.2.3", "1.2.3.4/33", "256.1.1.1", "01.2.3.4", "1.2.3.4/", "::/129", "1::2::3", ":1::",
     "1:2:3:4:5:6:7:8:9", "12345::", "g::1", "1:2:3:4:5:6:7", "1:::2", "a.b.c.d", "1.2.3.4/24x"]
)  # fmt: skip


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(_v4_text, _v6_text, _junk), min_size=1, max_size=30))
def test_parse_prefixes_matches_ipaddress(texts: list[str]) -> None:
    got = parse_prefixes(pl.Series(texts, dtype=pl.String))
    for text, row in zip(texts, got.iter_rows(named=True), strict=True):
        prefix, version, start, end, plen = _reference(text)
        assert row["ok"] == (version is not None), text
        if version is None:
            continue
        assert (row["ip_version"], row["start"], row["end"], row["prefix_len"]) == (version, start, end, plen), text
        assert row["prefix"] == (prefix if version == 4 else text.lower()), text


def test_a_bad_prefix_names_the_tag_and_index() -> None:
    doc = {"changeNumber": 1, "cloud": "Public", "values": [
        {"name": "A", "properties": {"addressPrefixes": ["10.0.0.0/8"]}},
        {"name": "B", "properties": {"addressPrefixes": ["10.1.0.0/16", "10.1.0.0/40"]}}]}  # fmt: skip
    with pytest.raises(InventoryError, match=r"t\.json: \$\.values\[1\]\.properties\.addressPrefixes\[1\]: not a CIDR: '10\.1\.0\.0/40'"):
        load_tags(doc, "t.json")
