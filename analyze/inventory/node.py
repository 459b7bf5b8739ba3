"""Case-insensitive, path-tracking reads of JSON / YAML documents.

Azure's key casing drifts between CLI versions (``frontendIpConfigurations`` vs
``frontendIPConfigurations``) and ARM nests fields under ``properties`` where the CLI
flattens them.  ``Node`` hides both: ``node.text("privateIPAddress")`` finds the key in any
casing, at the top level or under ``properties``, and every error names the file and the
JSON / YAML path of the offending value.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from typing import Any, Literal

from analyze.inventory.model import canon_id
from capture.errors import InventoryError, clip


_LOWER: dict[tuple[str, ...], tuple[str, ...]] = {}
"""Lower-cased spellings of the key names loaders ask for (a handful of distinct tuples)."""


class Node:
    """A read-only view of one mapping of a document, with its path for messages."""

    __slots__ = ("_index", "path", "source", "value")

    def __init__(self, value: Mapping[str, Any], path: str, source: str) -> None:
        self.value = value
        self.path = path
        self.source = source
        self._index: list[tuple[dict[str, tuple[int, str, Any]], str]] | None = None

    # -- locating -----------------------------------------------------------------------

    def _find(self, names: tuple[str, ...]) -> tuple[str, Any] | None:
        # The first key (in document order) of the first scope matching any of ``names``;
        # each scope's lower-cased keys are indexed once, as loaders ask a node dozens of times.
        scopes = self._index if self._index is not None else self._build_index()
        wanted = _LOWER.get(names)
        if wanted is None:
            wanted = _LOWER[names] = tuple(n.lower() for n in names)
        for index, prefix in scopes:
            best = None
            for name in wanted:
                hit = index.get(name)
                if hit is not None and (best is None or hit[0] < best[0]):
                    best = hit
            if best is not None:
                return f"{prefix}.{best[1]}", best[2]
        return None

    def _build_index(self) -> list[tuple[dict[str, tuple[int, str, Any]], str]]:
        scopes = [(self.value, self.path)]
        for key, val in self.value.items():
            if isinstance(key, str) and key.lower() == "properties" and isinstance(val, Mapping):
                scopes.append((val, f"{self.path}.{key}"))
        self._index = []
        for scope, prefix in scopes:
            index: dict[str, tuple[int, str, Any]] = {}
            for i, (key, val) in enumerate(scope.items()):
                if isinstance(key, str) and val is not None:
                    index.setdefault(key.lower(), (i, key, val))
            self._index.append((index, prefix))
        return self._index

    def has(self, *names: str) -> bool:
        """Whether any of ``names`` is present (not null)."""
        return self._find(names) is not None

    def raw(self, *names: str) -> Any:
        """The first of ``names`` present, as stored, or None."""
        hit = self._find(names)
        return None if hit is None else hit[1]

    def where(self) -> str:
        """``file: path`` of this node, for ``source`` fields and messages."""
        return f"{self.source}: {self.path}"

    def error(self, message: str, key: str | None = None) -> InventoryError:
        """An ``InventoryError`` naming the file and the path of this node (or its ``key``)."""
        path = self.path if key is None else f"{self.path}.{key}"
        return InventoryError(f"{self.source}: {path}: {message}")

    # -- typed reads ----------------------------------------------------------------------

    def text(self, *names: str) -> str | None:
        """A string value; numbers are accepted and turned into text."""
        hit = self._find(names)
        if hit is None:
            return None
        path, val = hit
        if isinstance(val, bool) or not isinstance(val, (str, int, float)):
            raise InventoryError(f"{self.source}: {path}: expected text, got {clip(val)}")
        text = str(val).strip()
        return text or None

    def integer(self, *names: str) -> int | None:
        """An integer value (digits in a string are accepted)."""
        hit = self._find(names)
        if hit is None:
            return None
        path, val = hit
        if isinstance(val, bool):
            raise InventoryError(f"{self.source}: {path}: expected an integer, got {clip(val)}")
        if isinstance(val, int):
            return val
        if isinstance(val, str) and val.strip().lstrip("-").isdigit():
            return int(val)
        raise InventoryError(f"{self.source}: {path}: expected an integer, got {clip(val)}")

    def flag(self, *names: str) -> bool | None:
        """A boolean (``true``/``false`` strings are accepted, as ARM templates write them)."""
        hit = self._find(names)
        if hit is None:
            return None
        path, val = hit
        if isinstance(val, bool):
            return val
        if isinstance(val, str) and val.strip().lower() in ("true", "false"):
            return val.strip().lower() == "true"
        raise InventoryError(f"{self.source}: {path}: expected true or false, got {clip(val)}")

    def version(self, *names: str) -> Literal[4, 6] | None:
        """An address family: ``IPv4`` / ``IPv6`` (any case, as ARM writes them) or 4 / 6."""
        hit = self._find(names)
        if hit is None:
            return None
        path, val = hit
        text = str(val).strip().lower()
        if isinstance(val, bool) or text not in ("ipv4", "ipv6", "4", "6"):
            raise InventoryError(f"{self.source}: {path}: expected IPv4 or IPv6, got {clip(val)}")
        return 6 if text.endswith("6") else 4

    def obj(self, *names: str) -> Node | None:
        """A child mapping, or None."""
        hit = self._find(names)
        if hit is None:
            return None
        path, val = hit
        if not isinstance(val, Mapping):
            raise InventoryError(f"{self.source}: {path}: expected an object, got {clip(val)}")
        return Node(val, path, self.source)

    def objs(self, *names: str) -> list[Node]:
        """A list of child mappings (missing means empty)."""
        hit = self._find(names)
        if hit is None:
            return []
        path, val = hit
        if not isinstance(val, list):
            raise InventoryError(f"{self.source}: {path}: expected a list, got {clip(val)}")
        out = []
        for i, item in enumerate(val):
            if not isinstance(item, Mapping):
                raise InventoryError(
                    f"{self.source}: {path}[{i}]: expected an object, got {clip(item)}"
                )
            out.append(Node(item, f"{path}[{i}]", self.source))
        return out

    def strs(self, *names: str) -> list[str]:
        """A list of strings; a single string is split on commas (``az vm list -d`` style)."""
        hit = self._find(names)
        if hit is None:
            return []
        path, val = hit
        if isinstance(val, str):
            return [p.strip() for p in val.split(",") if p.strip()]
        if not isinstance(val, list):
            raise InventoryError(f"{self.source}: {path}: expected a list, got {clip(val)}")
        out = []
        for i, item in enumerate(val):
            if isinstance(item, bool) or not isinstance(item, (str, int)):
                raise InventoryError(
                    f"{self.source}: {path}[{i}]: expected text, got {clip(item)}"
                )
            if str(item).strip():
                out.append(str(item).strip())
        return out

    def ref(self, *names: str) -> str | None:
        """A reference: ``{"id": ...}`` or an id string, as a canonical id."""
        hit = self._find(names)
        if hit is None:
            return None
        return _ref_value(hit[1], hit[0], self.source)

    def refs(self, *names: str) -> tuple[str, ...]:
        """A list of references as canonical ids."""
        hit = self._find(names)
        if hit is None:
            return ()
        path, val = hit
        if not isinstance(val, list):
            return (r,) if (r := _ref_value(val, path, self.source)) else ()
        out = []
        for i, item in enumerate(val):
            r = _ref_value(item, f"{path}[{i}]", self.source)
            if r:
                out.append(r)
        return tuple(out)

    def ip(self, *names: str) -> str | None:
        """An IP address (validated, canonical text)."""
        text = self.text(*names)
        if text is None:
            return None
        try:
            return str(ipaddress.ip_address(text))
        except ValueError:
            key = (self._find(names) or ("?", None))[0]
            raise InventoryError(
                f"{self.source}: {key}: not an IP address: {clip(text)}"
            ) from None

    def network(self, *names: str) -> str | None:
        """A CIDR or single address, as canonical CIDR text."""
        text = self.text(*names)
        if text is None:
            return None
        key = (self._find(names) or ("?", None))[0]
        return parse_network(text, f"{self.source}: {key}")


def _ref_value(val: Any, path: str, source: str) -> str | None:
    if isinstance(val, Mapping):
        for key, inner in val.items():
            if isinstance(key, str) and key.lower() == "id":
                if inner is None:
                    return None
                if not isinstance(inner, str):
                    raise InventoryError(f"{source}: {path}.{key}: expected an id, got {clip(inner)}")
                return canon_id(inner) or None
        return None
    if isinstance(val, str):
        return canon_id(val) or None
    raise InventoryError(f"{source}: {path}: expected a reference {{id: ...}}, got {clip(val)}")


def parse_network(text: str, where: str) -> str:
    """``text`` (a CIDR or an address) as canonical CIDR text; InventoryError naming ``where``."""
    try:
        return str(ipaddress.ip_network(text.strip(), strict=False))
    except ValueError:
        raise InventoryError(f"{where}: not an IP address or CIDR: {clip(text)}") from None
