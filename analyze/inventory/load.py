"""``load(paths)``: any mix of inventory files -> one ``Inventory``, type auto-detected.

Per file: a text allowlist (``.txt``/``.lst``/``.list``, or a file that is only addresses),
else JSON (when it starts with ``{`` or ``[``), else YAML.  Per document: an ARM template,
a Service Tags file, the native YAML, an allowlist document, a ``{"value": [...]}`` page,
a list, or one Azure resource (type from ``type`` or the id).  A folder loads every
``*.json``, ``*.yaml``, ``*.yml`` and ``*.txt`` file in it, sorted by name.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

from analyze.inventory import allowlists, azure, native, servicetags, template
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


def load(paths: Iterable[str | Path]) -> Inventory:
    """Load and link every inventory file in ``paths`` (files or folders).

    Args:
        paths: Files (native YAML, az / ARM JSON, templates, Service Tags, allowlists) or
            folders of them.

    Returns:
        The linked ``Inventory``; ``.warnings`` lists missing references and skipped input.

    Raises:
        InventoryError: unreadable or malformed input, naming the file and the JSON / YAML
            path (or line) of the problem.
        ParseError: a text allowlist line that is not an address.
    """
    builder = Builder()
    for path in _expand(paths):
        load_file(path, builder)
    return builder.finish()


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
    """Detect what ``path`` holds and add it to ``into``."""
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
        return
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
            return
    load_document(doc, source, stem, into)


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


def load_document(doc: Any, source: str, stem: str, into: Builder) -> None:
    """Dispatch one parsed document (see the module docstring)."""
    routes: list[Route] = []
    _dispatch(doc, "$", source, stem, into, routes, top=True)
    if routes:
        into.effective_routes[stem.lower()] = (tuple(routes), source)


def _dispatch(
    doc: Any, path: str, source: str, stem: str, into: Builder, routes: list[Route], *, top: bool
) -> None:
    if isinstance(doc, list):
        for i, item in enumerate(doc):
            _dispatch(item, f"{path}[{i}]", source, stem, into, routes, top=False)
        return
    if not isinstance(doc, Mapping):
        raise InventoryError(f"{source}: {path}: expected an object, got {clip(doc)}")
    if top and template.detect(doc):
        for resource, where in template.expand(doc, source):
            node = Node(resource, where, source)
            if not azure.load(node, into):
                into.warn(f"{source}: {where}: ignored resource of type {resource.get('type')}")
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
        into.add(allowlists.load(kind, node, stem))
        return
    # A REST list page {"value": [...]} or an `az graph query` page {"data": [...]}.
    for key, page in doc.items():
        if (
            isinstance(key, str) and key.lower() in ("value", "data")
            and isinstance(page, list) and not azure.resource_type(node)
        ):  # fmt: skip
            _dispatch(page, f"{path}.{key}", source, stem, into, routes, top=False)
            return
    if azure.load(node, into):
        return
    if node.has("nextHopType") and not node.has("id"):
        routes.append(azure.route_of(node))
        return
    rtype = azure.resource_type(node)
    if rtype is not None:
        into.warn(f"{source}: {path}: ignored resource of type {node.text('type') or rtype}")
        return
    raise InventoryError(
        f"{source}: {path}: not an inventory document: expected native YAML sections, an "
        "Azure resource (with id or type), a {\"value\": [...]} page, a template, Service "
        f"Tags or an allowlist; got keys {clip(sorted(str(k) for k in doc)[:8])}"
    )
