"""Classification of observed source addresses (analyze/classify.py).

Expectations are derived by hand from tests/data/analyze/egress.yaml (see its header).
"""

from __future__ import annotations

import functools
import ipaddress
from pathlib import Path

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal, assert_schema_equal

from analyze.classify import (
    ADDRESSES_SCHEMA,
    CLASSIFIED_SCHEMA,
    AddressIndex,
    classify,
    classify_addresses,
)
from analyze.inventory import Inventory, load
from analyze.predict import Prediction, predict
from tests.analyze.records_factory import frame, make_conn

DATA = Path(__file__).resolve().parent.parent / "data" / "analyze"


@pytest.fixture(scope="module")
def inv() -> Inventory:
    return load([DATA / "egress.yaml"])


@pytest.fixture(scope="module")
def preds(inv: Inventory) -> list[Prediction]:
    return predict(inv)


@pytest.fixture(scope="module")
def index(inv: Inventory, preds: list[Prediction]) -> AddressIndex:
    return AddressIndex.build(inv, preds)


# ip, class, via, resource, candidate_vms, confidence, scope, service_tag
CASES = [
    ("20.1.2.4", "lb_frontend", "outbound_rule", "stdlb/fe-out", ["vm_out"], "strong", "global", "AzureCloud"),
    # Test2VM is in mylb's pool but predicted default SNAT: nobody is predicted to use it.
    ("40.125.161.55", "lb_frontend", None, "mylb/LoadBalancerFrontEnd", [], "strong", "global",
     "AzureCloud.chinanorth2"),
    ("42.159.94.123", "instance_public_ip", None, "lbvm-pip", ["lbvm"], "strong", "global", "AzureCloud"),
    ("20.0.0.10", "nat_gateway", None, "ngw1", ["vm_nat"], "strong", "global", "AzureCloud"),
    ("20.0.2.3", "nat_gateway", None, "ngw1", ["vm_nat"], "strong", "global", "AzureCloud"),
    ("20.0.2.4", "default_snat", None, None, ["Test2VM"], "weak", "global", "AzureCloud"),
    ("20.0.1.1", "firewall", None, "fw1", ["vm_fw"], "strong", "global", "AzureCloud"),
    # An inventory public IP attached to nothing, and a proxy: held, but no VM egress.
    ("20.0.0.99", "unknown", None, "spare-pip", [], "strong", "global", "AzureCloud"),
    ("20.0.0.40", "unknown", None, "appgw", [], "strong", "global", "AzureCloud"),
    ("10.0.0.5", "private", None, "Test2VM-nic/ipconfig1", ["Test2VM"], "strong", "private", None),
    ("::ffff:10.0.0.5", "private", None, "Test2VM-nic/ipconfig1", ["Test2VM"], "strong", "private", None),
    ("::FFFF:0a00:0005", "private", None, "Test2VM-nic/ipconfig1", ["Test2VM"], "strong", "private", None),
    ("10.0.3.77", "private", None, "vnet1/fwsub", [], "strong", "private", None),
    ("10.0.200.1", "private", None, "vnet1", [], "strong", "private", None),
    ("10.2.0.9", "private", None, "hub/AzureFirewallSubnet", [], "strong", "private", None),
    ("192.168.50.3", "private", None, "office", [], "strong", "private", None),
    ("198.51.100.7", "external", None, "partner", [], "strong", "global", None),
    ("139.217.1.1", "default_snat", None, None, ["Test2VM"], "weak", "global", "AzureCloud.chinanorth2"),
    ("139.217.100.1", "default_snat", None, None, ["Test2VM"], "weak", "global", "Storage.chinanorth2"),
    ("139.217.200.1", "default_snat", None, None, ["Test2VM"], "weak", "global", "AzureCloud.chinaeast2"),
    ("2603:1040:1000:5::41", "default_snat", None, None, ["Test2VM"], "weak", "global", "AppService.chinanorth2"),
    ("2603:1040:1000:5::1", "default_snat", None, None, ["Test2VM"], "weak", "global", "Storage.chinanorth2"),
    ("2603:1040:1000::9", "default_snat", None, None, ["Test2VM"], "weak", "global", "AzureCloud.chinanorth2"),
    ("2603:1000::1", "default_snat", None, None, ["Test2VM"], "weak", "global", "AzureCloud"),
    ("2001:db8:40::1", "unknown", None, "appgw", [], "strong", "global", None),
    ("8.8.8.8", "external", None, None, [], "weak", "global", None),
    ("2001:db8::1", "external", None, None, [], "weak", "global", None),
    # loopback and link-local are local (issue 16.5); other special-purpose addresses
    # outside the inventory are not Azure-owned, so external
    ("127.0.0.1", "local", None, None, [], "strong", "loopback", None),
    ("::1", "local", None, None, [], "strong", "loopback", None),
    ("0.0.0.0", "external", None, None, [], "weak", "unspecified", None),
    ("::", "external", None, None, [], "weak", "unspecified", None),
    ("172.16.5.5", "external", None, None, [], "weak", "private", None),
    ("fd00::5", "external", None, None, [], "weak", "private", None),
    ("169.254.169.254", "local", None, None, [], "strong", "link_local", None),
    ("fe80::1%eth0", "local", None, None, [], "strong", "link_local", None),
    ("100.64.1.1", "external", None, None, [], "weak", "shared", None),
    ("224.0.0.251", "external", None, None, [], "weak", "multicast", None),
    ("ff02::1", "external", None, None, [], "weak", "multicast", None),
    ("240.0.0.1", "external", None, None, [], "weak", "reserved", None),
    # not addresses
    ("10.0.0.256", "unknown", None, None, [], "weak", "invalid", None),
    ("1:2:3:4:5:6:7::8", "unknown", None, None, [], "weak", "invalid", None),
    ("1:::2", "unknown", None, None, [], "weak", "invalid", None),
    ("web1", "unknown", None, None, [], "weak", "invalid", None),
    ("", "unknown", None, None, [], "weak", "invalid", None),
    (None, "unknown", None, None, [], "weak", "invalid", None),
]


@pytest.mark.parametrize(
    ("ip", "cls", "via", "resource", "candidates", "confidence", "scope", "tag"), CASES, ids=lambda x: repr(x)
)
def test_classify_addresses_edge_cases(
    inv: Inventory, preds: list[Prediction], index: AddressIndex, ip: str | None, cls: str, via: str | None,
    resource: str | None, candidates: list[str], confidence: str, scope: str, tag: str | None,
) -> None:  # fmt: skip
    got = classify_addresses([ip], inv, preds, index=index).row(0, named=True)
    assert (got["ip"], got["class"], got["via"], got["resource"]) == (ip, cls, via, resource)
    assert (got["candidate_vms"], got["confidence"], got["scope"], got["service_tag"]) == (
        candidates, confidence, scope, tag,
    )  # fmt: skip


def test_classify_addresses_schema_and_one_row_per_distinct_input(inv: Inventory, preds: list[Prediction]) -> None:
    got = classify_addresses(["8.8.8.8", "10.0.0.5", "8.8.8.8", None, None], inv, preds)
    assert_schema_equal(got.schema, ADDRESSES_SCHEMA)
    assert got.get_column("ip").to_list() == ["8.8.8.8", "10.0.0.5", None]


def test_region_match_makes_default_snat_strong_and_filters_candidates(
    inv: Inventory, preds: list[Prediction]
) -> None:
    got = classify_addresses(
        ["139.217.1.1", "139.217.200.1", "20.9.9.9"], inv, preds, regions={"Test2VM": "China North 2"}
    )
    assert got.select("ip", "candidate_vms", "confidence", "region").rows() == [
        ("139.217.1.1", ["Test2VM"], "strong", "chinanorth2"),
        ("139.217.200.1", [], "weak", "chinaeast2"),  # another region: not Test2VM's
        ("20.9.9.9", ["Test2VM"], "weak", None),  # global AzureCloud: region unknown
    ]


def test_service_tags_lists_every_tag_general_to_specific(inv: Inventory, preds: list[Prediction]) -> None:
    got = classify_addresses(["139.217.100.1", "40.125.161.55", "8.8.8.8"], inv, preds)
    assert got.get_column("service_tags").to_list() == [
        ["AzureCloud", "AzureCloud.chinanorth2", "Storage.chinanorth2"],
        ["AzureCloud", "AzureCloud.chinanorth2"],
        [],
    ]


def test_without_service_tags_unowned_addresses_are_unknown() -> None:
    inv = load([DATA / "no_tags.yaml"])
    got = classify_addresses(["8.8.8.8", "42.159.94.123", "139.217.1.1"], inv, predict(inv))
    assert got.select("ip", "class", "confidence").rows() == [
        ("8.8.8.8", "unknown", "weak"),
        ("42.159.94.123", "instance_public_ip", "strong"),
        ("139.217.1.1", "unknown", "weak"),
    ]


def test_inventory_always_wins_over_a_more_specific_tag(tmp_path: Path) -> None:
    (tmp_path / "inv.yaml").write_text(
        "public_ip_prefixes: [{name: pfx, prefix: 20.0.0.0/16}]\n"
        "service_tags:\n"
        "  - {name: AzureCloud.eastus, region: eastus, prefixes: [20.0.5.0/24]}\n"
    )
    inv = load([tmp_path / "inv.yaml"])
    got = classify_addresses(["20.0.5.1", "20.1.0.1"], inv, predict(inv))
    assert got.select("ip", "class", "resource", "service_tag").rows() == [
        ("20.0.5.1", "unknown", "pfx", "AzureCloud.eastus"),  # an unattached prefix of ours
        ("20.1.0.1", "external", None, None),
    ]


# --- records ---------------------------------------------------------------------------------


def test_classify_records_keeps_every_row_and_adds_the_columns(
    inv: Inventory, preds: list[Prediction]
) -> None:
    records = frame(
        make_conn(src_ip="139.217.1.1"),
        make_conn(src_ip="20.1.2.4"),
        make_conn(src_ip=None),
        make_conn(src_ip="139.217.1.1", dst_port=443, service="https"),
    )
    out = classify(records, inv, preds).collect().sort("conn_id")
    assert_schema_equal(out.schema, CLASSIFIED_SCHEMA)
    assert_frame_equal(out.select(records.columns), records.sort("conn_id"))
    assert out.select("class", "resource", "candidate_vms").rows() == [
        ("default_snat", None, ["Test2VM"]),
        ("lb_frontend", "stdlb/fe-out", ["vm_out"]),
        ("unknown", None, []),
        ("default_snat", None, ["Test2VM"]),
    ]
    assert out.get_column("client_ip").null_count() == 4


def test_classify_accepts_a_lazy_frame_and_keeps_extra_columns(inv: Inventory, preds: list[Prediction]) -> None:
    records = frame(make_conn(src_ip="42.159.94.123")).with_columns(batch=pl.lit(7))
    out = classify(records.lazy(), inv, preds).collect()
    assert out.columns == [*CLASSIFIED_SCHEMA.names(), "batch"]
    assert out.row(0, named=True)["class"] == "instance_public_ip"


def test_xff_client_behind_an_inventory_proxy_is_classified(inv: Inventory, preds: list[Prediction]) -> None:
    records = frame(
        # App Gateway: "client:port"; the client claims a spoofed address on the left.
        make_conn(src_ip="20.0.0.40", service="http", dst_port=80, http_xff="1.1.1.1, 139.217.1.1:51234"),
        # two proxies: the rightmost non-proxy entry is the client
        make_conn(src_ip="2001:db8:40::1", service="http", http_xff="[2603:1040:1000::9]:443, 20.0.0.40"),
        # the same header from a non-proxy peer is not trusted
        make_conn(src_ip="8.8.8.8", service="http", http_xff="139.217.1.1"),
        # only proxies in the header: the leftmost one
        make_conn(src_ip="20.0.0.40", service="http", http_xff="20.0.0.40"),
        make_conn(src_ip="20.0.0.40", service="http", http_xff=None),
    )
    out = classify(records, inv, preds).collect().sort("conn_id")
    assert out.select("proxy", "client_ip", "client_class", "client_service_tag", "client_candidate_vms").rows() == [
        ("appgw", "139.217.1.1", "default_snat", "AzureCloud.chinanorth2", ["Test2VM"]),
        ("appgw", "2603:1040:1000::9", "default_snat", "AzureCloud.chinanorth2", ["Test2VM"]),
        (None, None, None, None, None),
        ("appgw", "20.0.0.40", "unknown", "AzureCloud", []),
        ("appgw", None, None, None, None),
    ]


def test_index_is_reusable(inv: Inventory, preds: list[Prediction], index: AddressIndex) -> None:
    a = classify(frame(make_conn(src_ip="20.0.1.1")), inv, preds, index=index).collect()  # one row: no order
    b = classify(frame(make_conn(src_ip="20.0.1.1")), inv, preds).collect()
    assert_frame_equal(a.drop("conn_id", "src_port", "origin"), b.drop("conn_id", "src_port", "origin"))


# --- totality: every address gets exactly one class --------------------------------------------

# Hand-listed from egress.yaml: (network, class) of the inventory, and the tagged prefixes.
INVENTORY = [
    ("20.1.2.4/32", "lb_frontend"), ("40.125.161.55/32", "lb_frontend"),
    ("42.159.94.123/32", "instance_public_ip"), ("20.0.0.10/32", "nat_gateway"),
    ("20.0.2.0/30", "nat_gateway"), ("20.0.1.1/32", "firewall"), ("20.0.0.99/32", "unknown"),
    ("20.0.0.40/32", "unknown"), ("2001:db8:40::1/128", "unknown"), ("10.0.0.0/16", "private"),
    ("10.2.0.0/16", "private"), ("192.168.50.0/24", "private"), ("198.51.100.0/24", "external"),
]  # fmt: skip
TAGGED = ["139.217.0.0/16", "20.0.0.0/8", "40.0.0.0/8", "42.159.0.0/16", "2603:1000::/24"]


def _reference(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> tuple[str, int]:
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip.is_loopback or ip.is_link_local:
        return "local", ip.version
    for net, cls in INVENTORY:
        n = ipaddress.ip_network(net)
        if n.version == ip.version and ip in n:
            return cls, ip.version
    tagged = any(ip in n for n in map(ipaddress.ip_network, TAGGED) if n.version == ip.version)
    return ("default_snat" if tagged else "external"), ip.version


def _near(net: str) -> st.SearchStrategy[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    n = ipaddress.ip_network(net)
    lo, hi = int(n.network_address), int(n.broadcast_address)
    return st.integers(max(lo - 2, 0), hi + 2).map(ipaddress.ip_address if n.version == 4 else ipaddress.IPv6Address)


ADDRESSES = st.one_of(
    st.ip_addresses(),
    st.sampled_from([n for n, _ in INVENTORY] + TAGGED).flatmap(_near),
)


def _texts(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> list[str]:
    out = [str(ip)]
    if ip.version == 4:
        out.append(f"::ffff:{ip}")
    else:
        out += [ip.exploded, ip.exploded.upper(), f"{ip}%eth0"]
    return out


@functools.cache
def _egress() -> tuple[Inventory, AddressIndex]:
    # not fixtures: hypothesis would print their (huge) reprs on failure
    inv = load([DATA / "egress.yaml"])
    return inv, AddressIndex.build(inv, predict(inv))


@settings(max_examples=300, deadline=None)
@given(st.lists(ADDRESSES, min_size=1, max_size=40))
def test_classifier_is_total_and_agrees_with_ipaddress(
    addresses: list[ipaddress.IPv4Address | ipaddress.IPv6Address],
) -> None:
    inv, index = _egress()
    texts = [t for ip in addresses for t in _texts(ip)]
    got = classify_addresses(texts, inv, [], index=index)
    assert got.height == len(set(texts))
    assert got.get_column("class").null_count() == 0
    expected = {t: _reference(ip) for ip in addresses for t in _texts(ip)}
    assert {ip: (cls, version) for ip, cls, version in got.select("ip", "class", "ip_version").rows()} == expected


@settings(max_examples=100, deadline=None)
@given(st.lists(st.text(alphabet="0123456789abcdef:.%[] xX", max_size=45), min_size=1, max_size=20))
def test_any_text_gets_exactly_one_class(texts: list[str]) -> None:
    inv, index = _egress()
    got = classify_addresses(texts, inv, [], index=index)
    assert got.height == len(set(texts))
    assert got.get_column("class").null_count() == 0
    for text, version in got.select("ip", "ip_version").rows():
        try:
            ipaddress.ip_address(text.split("%", 1)[0].strip().lower() if text.strip().lower() else text)
            valid = True
        except ValueError:
            valid = False
        assert (version is not None) == valid, text
