"""``load(paths)``: any mix of inventory files -> one ``Inventory``, type auto-detected.

Per file: a text allowlist (``.txt``/``.lst``/``.list``, or a file that is only addresses),
else JSON (when it starts with ``{`` or ``[``), else YAML.  Per document: an ARM template
(with its parameters file, when one is loaded too), a Service Tags file, the native YAML,
an allowlist document, a wrapper (``wrappers.py``: REST examples, export-template, Resource
Graph tables), a ``{"value": [...]}`` / ``{"data": [...]}`` page, a list, or one Azure
resource (type from ``type`` or the id).  A folder loads every ``*.json``, ``*.yaml``,
``*.yml`` and ``*.txt`` file in it, sorted by name.

Resources of a type no loader reads (storage accounts, key vaults, ...) are skipped and
counted by type (``LoadReport``); ``load`` notes the count in one warning.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from analyze.inventory import allowlists, azure, native, servicetags, template, wrappers
from analyze.inventory.build import Builder
from analyze.inventory.model import Inventory, Route
from analyze.inventory.node import Node
from capture.errors import InventoryError, ParseError, clip

TEXT_SUFFIXES = (".txt", ".lst", ".list")
FOLDER_GLOBS = ("*.json", "*.yaml", "*.yml", "*.txt")
MAX_FILE_BYTES = 1 << 30
"""A larger inventory file is refused before it is read (real ones are megabytes)."""
MAX_DEPTH = 100
"""Deepest nesting of lists and objects accepted (real documents stay under 20): the loaders
walk documents recursively, so deeper input would end in a RecursionError."""
MAX_ALIAS_VALUES = 1_000_000
"""YAML aliases may expand a document to at most this many values (or to its own size, when
larger): ``yaml.safe_load`` shares aliased nodes, but everything after it walks the expanded
tree, so nine nested anchors of ten aliases each ("billion laughs") would take forever."""


@dataclass
class LoadReport:
    """What ``load_report`` read, by resource type (as the documents spell it)."""

    loaded: Counter[str] = field(default_factory=Counter)
    """Azure resources read (ARM / az / REST documents and templates), by type."""
    skipped: Counter[str] = field(default_factory=Counter)
    """Azure resources of types that do not change egress here, by type."""
    first_skipped: dict[str, str] = field(default_factory=dict)
    """Where each skipped type was first seen (``file: path``)."""
    spelling: dict[str, str] = field(default_factory=dict)
    """Lower-case type -> its first spelling: types are counted case-insensitively."""
    left_out: int = 0
    """Template resources whose ``condition`` is false (not deployed)."""

    def summary(self) -> str | None:
        """One line on what was skipped, or None."""
        if not self.skipped:
            return None
        kinds = ", ".join(
            f"{t} ({n}, first at {self.first_skipped[t]})" for t, n in sorted(self.skipped.items())
        )
        total = sum(self.skipped.values())
        return f"skipped {total} resource{'s' * (total != 1)} of types not read for egress: {kinds}"


def load(paths: Iterable[str | Path]) -> Inventory:
    """Load and link every inventory file in ``paths`` (files or folders).

    Args:
        paths: Files (native YAML, az / ARM JSON, REST examples, templates and their
            parameters files, Service Tags, allowlists) or folders of them.

    Returns:
        The linked ``Inventory``; ``.warnings`` lists missing references and skipped input.

    Raises:
        InventoryError: unreadable or malformed input, naming the file and the JSON / YAML
            path (or line) of the problem.
        ParseError: a text allowlist line that is not an address.
    """
    return load_report(paths)[0]


def load_report(paths: Iterable[str | Path]) -> tuple[Inventory, LoadReport]:
    """``load(paths)`` and the count of resources loaded and skipped, by type."""
    builder = Builder()
    report = LoadReport()
    docs: list[tuple[Path, Any]] = []
    params: list[tuple[Path, dict[str, Any]]] = []
    for path in _expand(paths):
        doc = read_file(path, builder)
        if doc is _DONE:
            continue
        if template.detect_parameters(doc):
            params.append((path, template.parameter_values(doc)))
        else:
            docs.append((path, doc))
    templates = [p for p, d in docs if isinstance(d, Mapping) and template.detect(d)]
    used: set[Path] = set()
    for path, doc in docs:
        values = None
        if path in templates:
            match = _parameters_for(path, templates, params)
            if match is not None:
                used.add(match[0])
                values = match[1]
        load_document(doc, str(path), _stem(path), builder, report=report, parameters=values)
    for path, _ in params:
        if path not in used:
            builder.warn(f"{path}: parameters file not matched to a template (name it "
                         "<template>.parameters.json, or load it with exactly one template)")  # fmt: skip
    if (line := report.summary()) is not None:
        builder.warn(line)
    return builder.finish(), report


def _stem(path: Path) -> str:
    return path.name.split(".", 1)[0]


def _parameters_for(
    tpl: Path, templates: list[Path], params: list[tuple[Path, dict[str, Any]]]
) -> tuple[Path, dict[str, Any]] | None:
    """The parameters file of ``tpl``: ``azuredeploy.parameters.json`` beside
    ``azuredeploy.json``; else the only one, when there is one template."""
    same = [p for p in params if p[0].parent == tpl.parent and _stem(p[0]).lower() == _stem(tpl).lower()]
    if len(same) == 1:
        return same[0]
    if len(templates) == 1 and len(params) == 1:
        return params[0]
    return None


def _expand(paths: Iterable[str | Path]) -> list[Path]:
    out: list[Path] = []
    for p in paths:
        path = Path(p)
        if path.is_dir():
            found = sorted({f for g in FOLDER_GLOBS for f in path.glob(g)})
            if not found:
                raise InventoryError(f"{path}: folder holds no inventory files")
            out += found
        elif not path.exists():
            raise InventoryError(f"{path}: no such file")
        else:
            out.append(path)
    return out


def load_file(path: Path, into: Builder) -> None:
    """Detect what ``path`` holds and add it to ``into`` (a template alone: defaults only)."""
    doc = read_file(path, into)
    if doc is not _DONE:
        load_document(doc, str(path), _stem(path), into)


_DONE: Any = object()
"""``read_file``'s answer for a file it has already added (a text allowlist)."""


def read_file(path: Path, into: Builder) -> Any:
    """Parse ``path``: its document, or ``_DONE`` once a text allowlist is added to ``into``."""
    source = str(path)
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise InventoryError(
                f"{source}: {size:,} bytes is more than the {MAX_FILE_BYTES:,} an inventory "
                "file may have"
            )
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise InventoryError(f"{source}: cannot read: {exc}") from None
    stem = path.name.split(".", 1)[0]
    if path.suffix.lower() in TEXT_SUFFIXES:
        into.add(allowlists.read_text(text, source, stem))
        return _DONE
    stripped = text.lstrip()
    if not stripped:
        raise InventoryError(f"{source}: empty file")
    if stripped[0] in "{[":
        try:
            doc = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InventoryError(
                f"{source}: line {exc.lineno} column {exc.colno}: invalid JSON: {exc.msg}"
            ) from None
        except RecursionError:
            raise _too_deep(source) from None
        _check_depth(doc, source)
    else:
        try:
            doc = _safe_load_bounded(text, source)
        except yaml.YAMLError as exc:
            if "maximum nesting depth" in str(getattr(exc, "problem", "")):
                raise _too_deep(source) from None  # libyaml's own limit (1,000 levels)
            mark = getattr(exc, "problem_mark", None)
            where = f"line {mark.line + 1}" if mark is not None else "?"
            problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
            raise InventoryError(f"{source}: {where}: invalid YAML: {problem}") from None
        if not isinstance(doc, (Mapping, list)):
            # A file of bare addresses reads as one YAML scalar: it is a text allowlist.
            try:
                into.add(allowlists.read_text(text, source, stem))
            except ParseError as exc:
                raise InventoryError(
                    f"{source}: not an inventory document (native YAML, az / ARM JSON, "
                    f"Service Tags or allowlist): {exc}"
                ) from None
            return _DONE
    return doc


def _too_deep(source: str) -> InventoryError:
    return InventoryError(f"{source}: nested more than {MAX_DEPTH} levels deep; not an inventory")


def _check_depth(doc: Any, source: str) -> None:
    """Raise when lists / objects in ``doc`` nest deeper than ``MAX_DEPTH`` (walked iteratively)."""
    level: list[Any] = [doc]
    for _ in range(MAX_DEPTH + 1):
        nxt: list[Any] = []
        for item in level:
            if isinstance(item, Mapping):
                nxt.extend(item.values())
            elif isinstance(item, list):
                nxt.extend(item)
        if not nxt:
            return
        level = nxt
    raise _too_deep(source)


_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
"""libyaml's parser when PyYAML was built with it (the same safe constructor either way):
the pure-Python parser takes seconds on a 50,000-address inventory."""


def _safe_load_bounded(text: str, source: str) -> Any:
    """``yaml.safe_load(text)``, refusing alias bombs, recursive aliases and deep nesting.

    The node graph is composed first (aliased nodes are shared, so this is as small as the
    text) and, when the text could hold an anchor at all, measured before any Python object
    is built from it.  Without an ``&`` there are no anchors, hence no aliases: the built
    document is as large as the text and only its depth is checked.
    """
    loader = _YAML_LOADER(text)
    try:
        try:
            node = loader.get_single_node()
        except RecursionError:
            raise _too_deep(source) from None
        if node is None:
            return None
        anchors = "&" in text
        if anchors:
            _check_yaml_size(node, source)
        doc = loader.construct_document(node)
    finally:
        loader.dispose()
    if not anchors:
        _check_depth(doc, source)
    return doc


def _check_yaml_size(root: yaml.Node, source: str) -> None:
    """Count the values ``root`` expands to (aliases followed), its depth, and alias loops."""
    expanded: dict[int, int] = {}  # node id -> values under it, aliases expanded
    depth: dict[int, int] = {}
    open_ids: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        key = id(node)
        children: list[yaml.Node] = []
        if isinstance(node, yaml.SequenceNode):
            children = list(node.value)
        elif isinstance(node, yaml.MappingNode):
            children = [n for pair in node.value for n in pair]
        if done:
            open_ids.discard(key)
            expanded[key] = 1 + sum(expanded[id(c)] for c in children)
            depth[key] = 1 + max((depth[id(c)] for c in children), default=0)
            if depth[key] > MAX_DEPTH:
                raise _too_deep(source)
            continue
        if key in expanded:
            continue
        if key in open_ids:
            raise InventoryError(f"{source}: a YAML alias refers to its own anchor (a loop)")
        open_ids.add(key)
        stack.append((node, True))
        stack.extend((c, False) for c in children if id(c) not in expanded)
    total, composed = expanded[id(root)], len(expanded)
    if total > max(MAX_ALIAS_VALUES, composed):
        raise InventoryError(
            f"{source}: YAML aliases expand it to {total:,} values, more than the "
            f"{MAX_ALIAS_VALUES:,} allowed (an alias bomb?)"
        )


def load_document(
    doc: Any,
    source: str,
    stem: str,
    into: Builder,
    *,
    report: LoadReport | None = None,
    parameters: Mapping[str, Any] | None = None,
) -> None:
    """Dispatch one parsed document (see the module docstring).

    Args:
        doc: The parsed document.
        source: Its file, for messages.
        stem: The file name before the first dot (NIC name of an effective-routes file,
            allowlist name of an allowlist file).
        into: Where records go.
        report: Counts of resources loaded / skipped by type, when wanted.
        parameters: A template's values from its parameters file.
    """
    routes: list[Route] = []
    _Dispatch(source, stem, into, report or LoadReport(), routes, parameters).run(doc, "$", top=True)
    if routes:
        into.effective_routes[stem.lower()] = (tuple(routes), source)


@dataclass
class _Dispatch:
    source: str
    stem: str
    into: Builder
    report: LoadReport
    routes: list[Route]
    parameters: Mapping[str, Any] | None

    def run(self, doc: Any, path: str, *, top: bool) -> None:
        source, into = self.source, self.into
        if isinstance(doc, list):
            for i, item in enumerate(doc):
                self.run(item, f"{path}[{i}]", top=False)
            return
        if not isinstance(doc, Mapping):
            raise InventoryError(f"{source}: {path}: expected an object, got {clip(doc)}")
        if template.detect(doc):
            self._template(doc, path)
            return
        inner = wrappers.unwrap(doc)
        if inner is not None:
            for item, suffix in inner:
                self.run(item, f"{path}{suffix}", top=top)
            return
        if top and servicetags.detect(doc):
            into.service_tags.append(servicetags.load(doc, source))
            return
        if top and native.detect(doc):
            native.load(doc, source, into)
            return
        node = Node(doc, path, source)
        kind = allowlists.detect(doc)
        if kind is not None:
            into.add(allowlists.load(kind, node, self.stem))
            return
        # A REST list page {"value": [...]} or an `az graph query` page {"data": [...]}.
        for key, page in doc.items():
            if (
                isinstance(key, str) and key.lower() in ("value", "data")
                and isinstance(page, list) and not azure.resource_type(node)
            ):  # fmt: skip
                self.run(page, f"{path}.{key}", top=False)
                return
        if self._resource(node):
            return
        if node.has("nextHopType") and not node.has("id"):
            self.routes.append(azure.route_of(node))
            return
        raise InventoryError(
            f"{source}: {path}: not an inventory document: expected native YAML sections, an "
            "Azure resource (with id or type), a {\"value\": [...]} page, a template, a REST "
            "example, Service Tags or an allowlist; got keys "
            f"{clip(sorted(str(k) for k in doc)[:8])}"
        )

    def _resource(self, node: Node) -> bool:
        """Load one Azure resource or count it as skipped; False when it is not one."""
        if azure.load(node, self.into):
            self.report.loaded[self._spelled(node)] += 1
            return True
        if azure.resource_type(node) is not None:
            kind = self._spelled(node)
            self.report.skipped[kind] += 1
            self.report.first_skipped.setdefault(kind, node.where())
            return True
        return False

    def _spelled(self, node: Node) -> str:
        kind = _type_name(node)
        return self.report.spelling.setdefault(kind.lower(), kind)

    def _template(self, doc: Mapping[str, Any], path: str) -> None:
        source = self.source if path == "$" else f"{self.source}: {path}"
        expansion = template.expand(doc, source, self.parameters)
        for message in expansion.warnings:
            self.into.warn(message)
        self.report.left_out += expansion.left_out
        for resource, where in expansion.resources:
            self._resource(Node(resource, where if path == "$" else f"{path}{where[1:]}", self.source))


def _type_name(node: Node) -> str:
    """The resource type as written (``Microsoft.Network/loadBalancers``), else from the id."""
    rtype = node.text("type")
    if rtype and "/" in rtype:
        return rtype
    rid = node.text("id") or ""
    parts = rid.strip("/").split("/")
    if "providers" in [p.lower() for p in parts]:
        at = max(i for i, p in enumerate(parts) if p.lower() == "providers")
        rest = parts[at + 1 :]
        if len(rest) >= 3:
            return "/".join([rest[0], *rest[1::2][: (len(rest) - 1) // 2]])
    vm = node.obj("virtualMachine")
    return "Microsoft.Compute/virtualMachines" if vm is not None else (rtype or "?")
