"""analyze/inventory/allowlists.py: text lists, App Service, NSG, storage and SQL rules."""

from __future__ import annotations

from pathlib import Path

import pytest

from analyze.inventory import load, load_allowlist
from capture.errors import InventoryError, ParseError

ROOT = Path(__file__).resolve().parents[3]
AL = ROOT / "tests" / "data" / "inventory" / "allowlists"


@pytest.mark.parametrize(
    ("file", "name", "address", "allowed"),
    [
        ("office.txt", "office", "203.0.113.7", True),
        ("office.txt", "office", "198.51.100.200", True),
        ("office.txt", "office", "2001:db8::1", True),
        ("office.txt", "office", "203.0.113.8", False),
        # App Service: priority order; the /16 deny (50) comes before the /32 allow (100)
        ("webapp_access_restrictions.json", "webapp_access_restrictions", "40.125.161.55", True),
        ("webapp_access_restrictions.json", "webapp_access_restrictions", "20.1.2.3", False),
        ("webapp_access_restrictions.json", "webapp_access_restrictions", "8.8.8.8", None),  # AFD tag unknown
        # NSG: deny 40.125.161.0/28 at 100 beats allow 40.125.161.55 at 200; outbound ignored
        ("nsg_rules.json", "web-nsg", "40.125.161.55", True),
        ("nsg_rules.json", "web-nsg", "40.125.161.5", False),
        ("nsg_rules.json", "web-nsg", "203.0.113.1", False),
        ("storage_network_rules.json", "storage_network_rules", "20.1.2.77", True),
        ("storage_network_rules.json", "storage_network_rules", "20.1.3.1", False),
        # SQL: 40.125.161.50 - .60 and "Allow Azure services" (AzureCloud tag)
        ("sql_firewall_rules.json", "sql1", "40.125.161.60", True),
        ("sql_firewall_rules.json", "sql1", "40.125.161.61", None),
    ],
)
def test_allows(file: str, name: str, address: str, allowed: bool | None) -> None:
    allowlist = load_allowlist(AL / file)
    assert allowlist.name == name
    assert allowlist.allows(address) is allowed


def test_sql_azure_services_rule_with_service_tags() -> None:
    allowlist = load_allowlist(AL / "sql_firewall_rules.json")
    assert allowlist.allows("40.125.161.61", frozenset({"azurecloud"})) is True
    assert allowlist.allows("40.125.161.61", frozenset()) is False


def test_folder_loads_every_allowlist() -> None:
    inv = load([AL])
    assert sorted(inv.allowlists) == [
        "office", "sql1", "storage_network_rules", "web-nsg", "webapp_access_restrictions",
    ]  # fmt: skip
    assert inv.warnings == ()


def test_text_errors_give_the_line(tmp_path: Path) -> None:
    with pytest.raises(ParseError, match=r"bad_allowlist\.txt: line 3: not an IP address or CIDR: 'not-an-address'"):
        load([ROOT / "tests" / "data" / "inventory" / "broken" / "bad_allowlist.txt"])


def test_a_file_of_bare_addresses_without_extension(tmp_path: Path) -> None:
    path = tmp_path / "allow"
    path.write_text("40.125.161.55\n20.0.0.0/8\n")
    assert load_allowlist(path).allows("20.9.9.9") is True


def test_load_allowlist_rejects_non_allowlists() -> None:
    with pytest.raises(InventoryError, match="expected one allowlist, found 0"):
        load_allowlist(ROOT / "tests" / "data" / "inventory" / "rows" / "row_1.yaml")
