"""analyze/inventory/node.py: case-insensitive keys, `properties` lifting, error paths."""

from __future__ import annotations

import pytest

from analyze.inventory.node import Node, parse_network
from capture.errors import InventoryError


def test_case_insensitive_and_properties() -> None:
    node = Node({"Name": "x", "properties": {"PrivateIpAddress": "10.0.0.4",
                 "publicIPAddress": {"ID": "/SUBS/A"}, "Pools": [{"id": "/p/1"}, "/P/2"]}},
                "$[0]", "f.json")  # fmt: skip
    assert node.text("name") == "x"
    assert node.ip("privateIPAddress") == "10.0.0.4"
    assert node.ref("publicIpAddress") == "/subs/a"
    assert node.refs("pools") == ("/p/1", "/p/2")
    assert node.obj("publicIPAddress").path == "$[0].properties.publicIPAddress"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("value", "call", "message"),
    [
        ({"a": 5}, lambda n: n.objs("a"), r"f\.json: \$\.a: expected a list, got 5"),
        ({"a": [1]}, lambda n: n.objs("a"), r"f\.json: \$\.a\[0\]: expected an object, got 1"),
        ({"a": "x"}, lambda n: n.integer("a"), r"\$\.a: expected an integer, got 'x'"),
        ({"a": "yes"}, lambda n: n.flag("a"), r"\$\.a: expected true or false, got 'yes'"),
        ({"a": ["x"]}, lambda n: n.text("a"), r"\$\.a: expected text"),
        ({"properties": {"ip": "1.2.3"}}, lambda n: n.ip("ip"), r"\$\.properties\.ip: not an IP address: '1\.2\.3'"),
        ({"r": 3}, lambda n: n.ref("r"), r"\$\.r: expected a reference"),
    ],
)
def test_errors_name_file_and_path(value: dict[str, object], call, message: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(InventoryError, match=message):
        call(Node(value, "$", "f.json"))


def test_strs_accepts_comma_joined_text_and_numbers() -> None:
    node = Node({"privateIps": "10.0.0.4,10.0.1.4", "ports": [80, "443"], "b": "TRUE"}, "$", "f")
    assert node.strs("privateIps") == ["10.0.0.4", "10.0.1.4"]
    assert node.strs("ports") == ["80", "443"]
    assert node.flag("b") is True


def test_parse_network() -> None:
    assert parse_network("10.0.0.5/24", "w") == "10.0.0.0/24"
    assert parse_network(" 2001:DB8::1 ", "w") == "2001:db8::1/128"
    with pytest.raises(InventoryError, match="w: not an IP address or CIDR: 'x'"):
        parse_network("x", "w")
