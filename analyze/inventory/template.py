"""ARM deployment templates (quickstarts, ``az group export``, portal "Export template").

Spec: https://learn.microsoft.com/azure/azure-resource-manager/templates/template-expressions
and .../templates/copy-resources, copy-properties, copy-variables.

``expand`` evaluates a template as far as egress needs and returns every resource in the ARM
shape ``azure.py`` reads (with an ``id``), child resources included:

* expressions are parsed properly (nested calls, ``'it''s'`` literals, ``.prop`` and
  ``[index]`` access) and evaluated with the functions in ``_FUNCTIONS``;
* ``copy`` loops of resources, of properties and of variables are expanded (``copyIndex()``
  with a loop name and / or an offset, ``count`` from any expression);
* what cannot be known before deployment (``resourceGroup()``, ``subscription()``,
  ``deployment()``, ``uniqueString()``, ``guid()``, ``reference()``, ``list*()``, ...) and
  any function not evaluated here becomes an ``Opaque`` placeholder whose text is the
  expression (``<uniqueString(resourceGroup().id)>``), with one warning per function naming
  the JSON paths; a placeholder in a property is dropped (the property reads as unknown);
* parameters come from a parameters file, else ``defaultValue``; a declared parameter with
  neither is a placeholder and a warning;
* a load balancer or public IP without ``sku`` gets the API's default, Basic;
* ``condition: false`` resources are left out; ``dependsOn`` is ignored.

Only malformed expressions and references to undeclared parameters / variables are errors,
each naming the file and the JSON path.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from capture.errors import InventoryError, clip

NAME = "arm-template"
"""Loader name, for messages."""

MAX_COPIES = 800
"""ARM refuses a ``count`` above 800 (copy-resources: "Copy limits")."""
MAX_EXPANDED = 100_000
"""Copies made in one template, all loops together: nested loops of 800 would otherwise
multiply into hundreds of millions of values."""

_ID_RE = re.compile(r"^/subscriptions/([^/]+)/resourcegroups/([^/]+)/", re.IGNORECASE)
_TOKEN_RE = re.compile(
    r"\s*(?:(?P<str>'(?:[^']|'')*')|(?P<num>-?\d+(?:\.\d+)?)|(?P<name>[A-Za-z_$][\w$]*)"
    r"|(?P<punct>[(),.\[\]]))"
)
_UNKNOWABLE = frozenset(
    ("resourcegroup", "subscription", "deployment", "tenant", "managementgroup", "environment",
     "uniquestring", "guid", "newguid", "utcnow", "reference", "listkeys", "listsecrets",
     "listaccountsas", "listservicesas", "listcallbackurl", "pickzones", "providers",
     "deployer", "managementgroupresourceid")
)  # fmt: skip
"""Functions whose value is only known at deployment: always placeholders."""


class Opaque(str):
    """A value known only at deployment; its text is a stable placeholder for it."""

    __slots__ = ()


def detect(doc: Any) -> bool:
    """Whether ``doc`` is a deployment template."""
    if not isinstance(doc, Mapping):
        return False
    keys = {k.lower(): v for k, v in doc.items() if isinstance(k, str)}
    schema = str(keys.get("$schema", ""))
    return "deploymenttemplate" in schema.lower() or (
        isinstance(keys.get("resources"), list) and "contentversion" in keys
    )


def detect_parameters(doc: Any) -> bool:
    """Whether ``doc`` is a deployment parameters file (``azuredeploy.parameters.json``)."""
    if not isinstance(doc, Mapping):
        return False
    keys = {k.lower(): v for k, v in doc.items() if isinstance(k, str)}
    schema = str(keys.get("$schema", "")).lower()
    if "deploymentparameters" in schema:
        return True
    params = keys.get("parameters")
    return (
        "contentversion" in keys and "resources" not in keys and isinstance(params, Mapping)
        and all(isinstance(v, Mapping) and ("value" in v or "reference" in v) for v in params.values())
    )  # fmt: skip


def parameter_values(doc: Mapping[str, Any]) -> dict[str, Any]:
    """``{name: value}`` of a parameters file (a Key Vault reference reads as ``KEY_VAULT``)."""
    params = next((v for k, v in doc.items() if isinstance(k, str) and k.lower() == "parameters"), {})
    out: dict[str, Any] = {}
    for name, spec in (params or {}).items():
        if isinstance(spec, Mapping) and "value" in spec:
            out[str(name).lower()] = spec["value"]
        elif isinstance(spec, Mapping) and "reference" in spec:
            out[str(name).lower()] = KEY_VAULT
    return out


KEY_VAULT: Any = object()
"""A parameter whose value is a Key Vault secret: known only at deployment."""


# --- expressions: parse to a small tree, render it back for placeholders ----------------------


@dataclass(frozen=True, slots=True)
class _Lit:
    value: Any


@dataclass(frozen=True, slots=True)
class _Call:
    name: str
    args: tuple[Any, ...]


@dataclass(frozen=True, slots=True)
class _Prop:
    base: Any
    name: str


@dataclass(frozen=True, slots=True)
class _Index:
    base: Any
    index: Any


def _render(node: Any) -> str:
    """The expression text of a parsed node (for placeholder names)."""
    if isinstance(node, _Lit):
        v = node.value
        if isinstance(v, str):
            return "'" + v.replace("'", "''") + "'"
        return json.dumps(v)
    if isinstance(node, _Call):
        return f"{node.name}({', '.join(_render(a) for a in node.args)})"
    if isinstance(node, _Prop):
        return f"{_render(node.base)}.{node.name}"
    return f"{_render(node.base)}[{_render(node.index)}]"


class _Parser:
    def __init__(self, text: str, fail: Callable[[str], InventoryError]) -> None:
        self.fail = fail
        self.toks: list[tuple[str, str]] = []
        pos = 0
        while pos < len(text):
            if text[pos:].strip() == "":
                break
            m = _TOKEN_RE.match(text, pos)
            if m is None:
                pos += len(text[pos:]) - len(text[pos:].lstrip())
                raise fail(f"cannot read expression at offset {pos}")
            kind = m.lastgroup or "punct"
            self.toks.append((kind, m.group(kind)))
            pos = m.end()
        self.pos = 0

    def parse(self) -> Any:
        node = self._expr()
        if self.pos != len(self.toks):
            raise self.fail(f"unexpected {self.toks[self.pos][1]!r} in expression")
        return node

    def _peek(self) -> str | None:
        return self.toks[self.pos][1] if self.pos < len(self.toks) else None

    def _expr(self) -> Any:
        if self.pos >= len(self.toks):
            raise self.fail("expression ends early")
        kind, tok = self.toks[self.pos]
        self.pos += 1
        node: Any
        if kind == "str":
            node = _Lit(tok[1:-1].replace("''", "'"))
        elif kind == "num":
            node = _Lit(float(tok) if "." in tok else int(tok))
        elif kind == "name":
            if (  # a user-defined function: namespace.member(...)
                self._peek() == "." and self.pos + 2 < len(self.toks)
                and self.toks[self.pos + 1][0] == "name" and self.toks[self.pos + 2][1] == "("
            ):  # fmt: skip
                tok = f"{tok}.{self.toks[self.pos + 1][1]}"
                self.pos += 2
            if self._peek() != "(":
                if tok.lower() in ("true", "false", "null"):
                    node = _Lit({"true": True, "false": False, "null": None}[tok.lower()])
                else:
                    raise self.fail(f"expected '(' after {tok}")
            else:
                self.pos += 1
                args: list[Any] = []
                if self._peek() == ")":
                    self.pos += 1
                else:
                    while True:
                        args.append(self._expr())
                        nxt = self._peek()
                        self.pos += 1
                        if nxt == ")":
                            break
                        if nxt != ",":
                            raise self.fail("expected ',' or ')'" if nxt else "expression ends early")
                node = _Call(tok, tuple(args))
        else:
            raise self.fail(f"unexpected {tok!r}")
        while self._peek() in (".", "["):
            if self._peek() == ".":
                self.pos += 1
                if self.pos >= len(self.toks) or self.toks[self.pos][0] != "name":
                    raise self.fail("expected a property name after '.'")
                node = _Prop(node, self.toks[self.pos][1])
                self.pos += 1
            else:
                self.pos += 1
                index = self._expr()
                if self._peek() != "]":
                    raise self.fail("expected ']'")
                self.pos += 1
                node = _Index(node, index)
        return node


# --- evaluation -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Ctx:
    path: str
    loops: tuple[tuple[str, int], ...] = ()
    """Enclosing copy loops, outermost first: (lower-case name, index)."""

    def at(self, path: str) -> _Ctx:
        return _Ctx(path, self.loops)


class _Unknown(Exception):
    """A value that needs a placeholder (raised inside a function, caught by the caller)."""


@dataclass
class _Evaluator:
    source: str
    doc: Mapping[str, Any]
    given: Mapping[str, Any]
    parameters: dict[str, Any] = field(default_factory=dict)
    variables: dict[str, Any] = field(default_factory=dict)
    var_paths: dict[str, str] = field(default_factory=dict)
    cache: dict[str, Any] = field(default_factory=dict)
    resolving: set[str] = field(default_factory=set)
    placeholders: dict[str, list[str]] = field(default_factory=dict)
    examples: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    subscription: str = "template"
    group: str = "template"
    copies_made: int = 0

    def __post_init__(self) -> None:
        lower = {k.lower(): (k, v) for k, v in self.doc.items() if isinstance(k, str)}
        pkey, params = lower.get("parameters", ("parameters", {}))
        vkey, variables = lower.get("variables", ("variables", {}))
        self.parameters = {k.lower(): v for k, v in (params or {}).items()}
        for k, v in (variables or {}).items():
            if k.lower() == "copy" and isinstance(v, list):
                for i, loop in enumerate(v):
                    if isinstance(loop, Mapping) and isinstance(loop.get("name"), str):
                        self.variables[loop["name"].lower()] = ("copy", loop)
                        self.var_paths[loop["name"].lower()] = f"$.{vkey}.copy[{i}]"
                continue
            self.variables[k.lower()] = ("value", v)
            self.var_paths[k.lower()] = f"$.{vkey}.{k}"
        self.param_key = pkey
        self.subscription, self.group = self._guess_scope()

    def _guess_scope(self) -> tuple[str, str]:
        """Subscription and group for ``resourceId()``: those of the ``*_externalid`` defaults.

        Exports parameterize references to resources outside the template with their real
        ids; the template's own resources most likely live in the same place.  Mismatches
        are still resolved on the ``/providers/...`` suffix when linking.
        """
        subs: Counter[str] = Counter()
        groups: Counter[str] = Counter()
        for spec in self.parameters.values():
            if isinstance(spec, Mapping):
                default = spec.get("defaultValue")
                if isinstance(default, str) and (m := _ID_RE.match(default)):
                    subs[m.group(1)] += 1
                    groups[m.group(2)] += 1
        return (
            subs.most_common(1)[0][0] if subs else "template",
            groups.most_common(1)[0][0] if groups else "template",
        )

    def err(self, path: str, message: str, text: str = "") -> InventoryError:
        tail = f": {clip('[' + text + ']')}" if text else ""
        return InventoryError(f"{self.source}: {path}: {message}{tail}")

    def placeholder(self, node: Any, ctx: _Ctx, fn: str) -> Opaque:
        text = Opaque(f"<{_render(node)}>")
        paths = self.placeholders.setdefault(fn, [])
        if ctx.path not in paths:
            paths.append(ctx.path)
        self.examples.setdefault(fn, text)
        return text

    def warnings(self) -> list[str]:
        out = list(dict.fromkeys(self.notes))
        for fn, paths in self.placeholders.items():
            shown = ", ".join(paths[:3]) + (f" (+{len(paths) - 3} more)" if len(paths) > 3 else "")
            out.append(
                f"{self.source}: {fn}() cannot be known before deployment: a placeholder such as "
                f"{self.examples[fn]} stands in for it at {shown}"
            )
        return out

    # -- JSON values ----------------------------------------------------------------------------

    def value(self, val: Any, ctx: _Ctx) -> Any:
        if isinstance(val, str):
            text = val.strip()
            if text.startswith("[["):
                return text[1:]
            if text.startswith("[") and text.endswith("]"):
                return self.expression(text[1:-1], ctx)
            return val
        if isinstance(val, list):
            return [self.value(v, ctx.at(f"{ctx.path}[{i}]")) for i, v in enumerate(val)]
        if isinstance(val, Mapping):
            out: dict[str, Any] = {}
            for k, v in val.items():
                if isinstance(k, str) and k.lower() == "copy" and _is_property_copy(v):
                    for i, loop in enumerate(v):
                        name = str(loop["name"])
                        out[name] = self.copies(loop, ctx.at(f"{ctx.path}.copy[{i}]"))
                    continue
                out[k] = self.value(v, ctx.at(f"{ctx.path}.{k}"))
            return out
        return val

    def copies(self, loop: Mapping[str, Any], ctx: _Ctx) -> list[Any]:
        """A property or variable ``copy`` loop: ``count`` evaluations of ``input``."""
        name = str(loop.get("name", "")).lower()
        count = self.count(loop.get("count"), ctx.at(f"{ctx.path}.count"))
        self.spend(count, ctx)
        body = loop.get("input")
        return [
            self.value(body, _Ctx(f"{ctx.path}.input", (*ctx.loops, (name, i))))
            for i in range(count)
        ]

    def spend(self, count: int, ctx: _Ctx) -> None:
        """Charge ``count`` copies to the template's budget (nested loops multiply)."""
        self.copies_made += count
        if self.copies_made > MAX_EXPANDED:
            raise self.err(ctx.path, f"copy loops expand to more than {MAX_EXPANDED:,} copies")

    def count(self, raw: Any, ctx: _Ctx) -> int:
        value = self.value(raw, ctx)
        if isinstance(value, Opaque):
            self.notes.append(
                f"{self.source}: {ctx.path}: copy count {value} is not known before deployment; "
                "no copies made"
            )
            return 0
        try:
            count = int(value)
        except (TypeError, ValueError):
            raise self.err(ctx.path, f"copy count is not a number: {clip(value)}") from None
        if not 0 <= count <= MAX_COPIES:
            raise self.err(ctx.path, f"copy count {count} is outside 0..{MAX_COPIES}")
        return count

    def expression(self, text: str, ctx: _Ctx) -> Any:
        try:
            node = _Parser(text, lambda m: self.err(ctx.path, m, text)).parse()
            return self.eval(node, ctx, text)
        except RecursionError:
            raise self.err(ctx.path, "expression nested too deeply") from None

    def eval(self, node: Any, ctx: _Ctx, text: str) -> Any:
        if isinstance(node, _Lit):
            return node.value
        if isinstance(node, (_Prop, _Index)):
            base = self.eval(node.base, ctx, text)
            if isinstance(node, _Prop):
                if isinstance(base, Opaque):
                    return Opaque(f"<{_render(node)}>")
                if not isinstance(base, Mapping):
                    raise self.err(ctx.path, f"property {node.name!r} of a non-object", text)
                found = {str(k).lower(): v for k, v in base.items()}
                if node.name.lower() not in found:
                    raise self.err(ctx.path, f"no property {node.name!r}", text)
                return found[node.name.lower()]
            index = self.eval(node.index, ctx, text)
            if isinstance(base, Opaque) or isinstance(index, Opaque):
                return Opaque(f"<{_render(node)}>")
            try:
                if isinstance(base, Mapping):
                    return {str(k).lower(): v for k, v in base.items()}[str(index).lower()]
                return base[index]
            except (KeyError, IndexError, TypeError):
                raise self.err(ctx.path, f"cannot index with {index!r}", text) from None
        assert isinstance(node, _Call)
        fn = node.name.lower()
        if fn in _UNKNOWABLE or fn.startswith("list"):
            return self.placeholder(node, ctx, node.name)
        if fn == "if":  # only the branch taken is evaluated, as ARM does
            if len(node.args) != 3:
                raise self.err(ctx.path, "if() takes three arguments", text)
            cond = self.eval(node.args[0], ctx, text)
            if isinstance(cond, Opaque):
                return Opaque(f"<{_render(node)}>")
            return self.eval(node.args[1 if _truth(cond) else 2], ctx, text)
        impl = _FUNCTIONS.get(fn)
        if impl is None:
            self.notes.append(f"{self.source}: {ctx.path}: template function {node.name}() is not "
                              "evaluated here; a placeholder stands in for it")  # fmt: skip
            return Opaque(f"<{_render(node)}>")
        args = [self.eval(a, ctx, text) for a in node.args]
        if fn not in _OPAQUE_AWARE and any(isinstance(a, Opaque) for a in args):
            return Opaque(f"<{_render(node)}>")
        try:
            return impl(self, args, ctx)
        except _Unknown:
            return Opaque(f"<{_render(node)}>")
        except (TypeError, ValueError, IndexError, KeyError, ZeroDivisionError) as exc:
            raise self.err(ctx.path, f"{node.name}(): {exc}", text) from None

    # -- parameters, variables, copyIndex -----------------------------------------------------

    def parameter(self, name: Any, ctx: _Ctx) -> Any:
        key = str(name).lower()
        if key not in self.parameters:
            raise self.err(ctx.path, f"parameter {name!r} is not defined")
        spec = self.parameters[key]
        if key in self.given and self.given[key] is not KEY_VAULT:
            return self.given[key]
        if key in self.given or not isinstance(spec, Mapping) or "defaultValue" not in spec:
            why = ("a Key Vault reference in the parameters file" if key in self.given
                   else "no defaultValue and no parameters file gives it")  # fmt: skip
            note = (f"{self.source}: $.{self.param_key}.{name}: parameter has no value here ({why}); "
                    "a placeholder stands in for it")  # fmt: skip
            if note not in self.notes:
                self.notes.append(note)
            return Opaque(f"<parameters('{name}')>")
        return self.resolve(f"p:{key}", spec["defaultValue"], _Ctx(f"$.{self.param_key}.{name}"), name)

    def variable(self, name: Any, ctx: _Ctx) -> Any:
        key = str(name).lower()
        if key not in self.variables:
            raise self.err(ctx.path, f"variable {name!r} is not defined")
        kind, raw = self.variables[key]
        vctx = _Ctx(self.var_paths[key])
        if kind == "copy":
            if f"v:{key}" not in self.cache:
                self.cache[f"v:{key}"] = self.copies(raw, vctx)
            return self.cache[f"v:{key}"]
        return self.resolve(f"v:{key}", raw, vctx, name)

    def resolve(self, key: str, raw: Any, ctx: _Ctx, name: Any) -> Any:
        if key in self.cache:
            return self.cache[key]
        if key in self.resolving:
            raise self.err(ctx.path, f"{name!r} refers to itself")
        self.resolving.add(key)
        try:
            self.cache[key] = self.value(raw, ctx)
        finally:
            self.resolving.discard(key)
        return self.cache[key]

    def copy_index(self, args: list[Any], ctx: _Ctx) -> int:
        name: str | None = None
        offset = 0
        for a in args:
            if isinstance(a, str):
                name = a.lower()
            else:
                offset = int(a)
        if not ctx.loops:
            raise ValueError("copyIndex() outside a copy loop")
        if name is None:
            # Unnamed: the resource's own loop (the outermost), as in copy-resources.
            return ctx.loops[0][1] + offset
        for loop, index in reversed(ctx.loops):
            if loop == name:
                return index + offset
        raise ValueError(f"no copy loop named {name!r} here")

    def resource_id(self, args: list[str], ctx: _Ctx, text: str = "") -> str:
        type_at = next((i for i, a in enumerate(args) if "/" in a), None)
        if type_at is None or type_at > 2:
            raise self.err(ctx.path, "resourceId() without a resource type", text)
        scope = args[:type_at]
        sub = scope[0] if len(scope) == 2 else self.subscription
        group = scope[-1] if scope else self.group
        namespace, *types = args[type_at].split("/")
        names = args[type_at + 1 :]
        if len(names) != len(types):
            raise self.err(ctx.path, f"resourceId() of {args[type_at]} needs {len(types)} name(s)", text)
        tail = "/".join(f"{t}/{n}" for t, n in zip(types, names, strict=True))
        rid = f"/subscriptions/{sub}/resourceGroups/{group}/providers/{namespace}/{tail}"
        return Opaque(rid) if any(isinstance(a, Opaque) for a in args) else rid


def _is_property_copy(v: Any) -> bool:
    return isinstance(v, list) and bool(v) and all(
        isinstance(x, Mapping) and "name" in x and "count" in x and "input" in x for x in v
    )


# --- the functions --------------------------------------------------------------------------


def _text(value: Any) -> str:
    """ARM's ``string()``: booleans as ``True``/``False``, objects and arrays as JSON."""
    if isinstance(value, bool):
        return "True" if value else "False"
    if value is None:
        return ""
    if isinstance(value, (Mapping, list)):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def _truth(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() == "true"
    return bool(value)


def _concat(_: _Evaluator, a: list[Any], __: _Ctx) -> Any:
    if a and all(isinstance(x, list) for x in a):
        return [y for x in a for y in x]
    out = "".join(_text(x) for x in a)
    return Opaque(out) if any(isinstance(x, Opaque) for x in a) else out


def _format(_: _Evaluator, a: list[Any], __: _Ctx) -> Any:
    fmt, rest = str(a[0]), a[1:]

    def one(m: re.Match[str]) -> str:
        if m.group(0) in ("{{", "}}"):
            return m.group(0)[0]
        value = rest[int(m.group(1))]
        spec = (m.group(2) or "").upper()
        if spec.startswith("D") and isinstance(value, int):
            return str(value).zfill(int(spec[1:] or 0))
        if spec.startswith("N") and isinstance(value, (int, float)):
            return f"{value:,.{int(spec[1:] or 2)}f}"
        return _text(value)

    out = re.sub(r"\{\{|\}\}|\{(\d+)(?::([^}]*))?\}", one, fmt)
    return Opaque(out) if any(isinstance(x, Opaque) for x in a) else out


def _length(_: _Evaluator, a: list[Any], __: _Ctx) -> int:
    return len(a[0])


def _empty(_: _Evaluator, a: list[Any], __: _Ctx) -> bool:
    return a[0] is None or (isinstance(a[0], (str, list, Mapping)) and len(a[0]) == 0)


def _coalesce(_: _Evaluator, a: list[Any], __: _Ctx) -> Any:
    for x in a:
        if isinstance(x, Opaque):
            raise _Unknown
        if x is not None:
            return x
    return None


def _split(_: _Evaluator, a: list[Any], __: _Ctx) -> list[str]:
    text, seps = str(a[0]), a[1] if isinstance(a[1], list) else [a[1]]
    return re.split("|".join(re.escape(str(s)) for s in seps), text)


def _union(_: _Evaluator, a: list[Any], __: _Ctx) -> Any:
    if all(isinstance(x, Mapping) for x in a):
        merged: dict[str, Any] = {}
        for x in a:
            merged.update(x)
        return merged
    out: list[Any] = []
    for x in a:
        for y in x:
            if y not in out:
                out.append(y)
    return out


def _int(_: _Evaluator, a: list[Any], __: _Ctx) -> int:
    return int(str(a[0]).strip()) if not isinstance(a[0], bool) else int(a[0])


def _bool(_: _Evaluator, a: list[Any], __: _Ctx) -> bool:
    if isinstance(a[0], str):
        if a[0].strip().lower() not in ("true", "false"):
            raise ValueError(f"not a boolean: {a[0]!r}")
        return a[0].strip().lower() == "true"
    return bool(a[0])


def _equals(_: _Evaluator, a: list[Any], __: _Ctx) -> bool:
    return bool(a[0] == a[1])


def _take(_: _Evaluator, a: list[Any], __: _Ctx) -> Any:
    return a[0][: max(0, int(a[1]))]


def _skip(_: _Evaluator, a: list[Any], __: _Ctx) -> Any:
    return a[0][max(0, int(a[1])) :]


def _first(_: _Evaluator, a: list[Any], __: _Ctx) -> Any:
    return a[0][0] if a[0] else ("" if isinstance(a[0], str) else None)


def _last(_: _Evaluator, a: list[Any], __: _Ctx) -> Any:
    return a[0][-1] if a[0] else ("" if isinstance(a[0], str) else None)


def _contains(_: _Evaluator, a: list[Any], __: _Ctx) -> bool:
    box, item = a
    if isinstance(box, Mapping):
        return str(item).lower() in {str(k).lower() for k in box}
    if isinstance(box, str):
        return str(item) in box
    return item in box


def _range(_: _Evaluator, a: list[Any], __: _Ctx) -> list[int]:
    start, count = int(a[0]), int(a[1])
    return list(range(start, start + count))


def _create_object(_: _Evaluator, a: list[Any], __: _Ctx) -> dict[str, Any]:
    if len(a) % 2:
        raise ValueError("createObject() takes key / value pairs")
    return {str(a[i]): a[i + 1] for i in range(0, len(a), 2)}


def _sub_id(kind: str) -> Callable[[_Evaluator, list[Any], _Ctx], str]:
    def build(ev: _Evaluator, a: list[Any], ctx: _Ctx) -> str:
        args = [str(x) for x in a]
        type_at = next(i for i, x in enumerate(args) if "/" in x)
        namespace, *types = args[type_at].split("/")
        tail = "/".join(f"{t}/{n}" for t, n in zip(types, args[type_at + 1 :], strict=True))
        if kind == "tenant":
            return f"/providers/{namespace}/{tail}"
        sub = args[0] if type_at == 1 else ev.subscription
        return f"/subscriptions/{sub}/providers/{namespace}/{tail}"

    return build


_F = Callable[[_Evaluator, list[Any], _Ctx], Any]
_FUNCTIONS: dict[str, _F] = {
    "parameters": lambda ev, a, ctx: ev.parameter(a[0], ctx),
    "variables": lambda ev, a, ctx: ev.variable(a[0], ctx),
    "copyindex": lambda ev, a, ctx: ev.copy_index(a, ctx),
    "concat": _concat,
    "format": _format,
    "resourceid": lambda ev, a, ctx: ev.resource_id([_text(x) for x in a], ctx),
    "subscriptionresourceid": _sub_id("subscription"),
    "tenantresourceid": _sub_id("tenant"),
    "tolower": lambda ev, a, ctx: _text(a[0]).lower(),
    "toupper": lambda ev, a, ctx: _text(a[0]).upper(),
    "string": lambda ev, a, ctx: _text(a[0]),
    "int": _int,
    "bool": _bool,
    "json": lambda ev, a, ctx: json.loads(str(a[0])),
    "add": lambda ev, a, ctx: int(a[0]) + int(a[1]),
    "sub": lambda ev, a, ctx: int(a[0]) - int(a[1]),
    "mul": lambda ev, a, ctx: int(a[0]) * int(a[1]),
    "div": lambda ev, a, ctx: int(int(a[0]) / int(a[1])),
    "mod": lambda ev, a, ctx: int(a[0]) % int(a[1]),
    "min": lambda ev, a, ctx: min(a[0] if len(a) == 1 and isinstance(a[0], list) else a),
    "max": lambda ev, a, ctx: max(a[0] if len(a) == 1 and isinstance(a[0], list) else a),
    "equals": _equals,
    "not": lambda ev, a, ctx: not _truth(a[0]),
    "and": lambda ev, a, ctx: all(_truth(x) for x in a),
    "or": lambda ev, a, ctx: any(_truth(x) for x in a),
    "less": lambda ev, a, ctx: a[0] < a[1],
    "lessorequals": lambda ev, a, ctx: a[0] <= a[1],
    "greater": lambda ev, a, ctx: a[0] > a[1],
    "greaterorequals": lambda ev, a, ctx: a[0] >= a[1],
    "empty": _empty,
    "coalesce": _coalesce,
    "split": _split,
    "replace": lambda ev, a, ctx: str(a[0]).replace(str(a[1]), str(a[2])),
    "trim": lambda ev, a, ctx: str(a[0]).strip(),
    "startswith": lambda ev, a, ctx: str(a[0]).lower().startswith(str(a[1]).lower()),
    "endswith": lambda ev, a, ctx: str(a[0]).lower().endswith(str(a[1]).lower()),
    "indexof": lambda ev, a, ctx: str(a[0]).lower().find(str(a[1]).lower()),
    "substring": lambda ev, a, ctx: (
        str(a[0])[int(a[1]) :] if len(a) == 2 else str(a[0])[int(a[1]) : int(a[1]) + int(a[2])]
    ),
    "padleft": lambda ev, a, ctx: _text(a[0]).rjust(int(a[1]), str(a[2]) if len(a) > 2 else " "),
    "join": lambda ev, a, ctx: str(a[1]).join(_text(x) for x in a[0]),
    "contains": _contains,
    "last": _last,
    "first": _first,
    "take": _take,
    "skip": _skip,
    "length": _length,
    "createarray": lambda ev, a, ctx: list(a),
    "array": lambda ev, a, ctx: a[0] if isinstance(a[0], list) else [a[0]],
    "createobject": _create_object,
    "union": _union,
    "intersection": lambda ev, a, ctx: [x for x in a[0] if all(x in y for y in a[1:])],
    "range": _range,
    "null": lambda ev, a, ctx: None,
    "true": lambda ev, a, ctx: True,
    "false": lambda ev, a, ctx: False,
}
_OPAQUE_AWARE = frozenset(("concat", "format", "resourceid", "coalesce", "createarray", "createobject",
                           "parameters", "variables", "copyindex", "union", "array"))  # fmt: skip
"""Functions that take a placeholder argument as it is (the rest return a placeholder)."""


# --- resources -------------------------------------------------------------------------------

_SKU_DEFAULTS = {"microsoft.network/loadbalancers": "Basic", "microsoft.network/publicipaddresses": "Basic"}
"""SKU of a resource deployed without ``sku``: Basic, in every API version of these types
(the REST specs' ``sku`` is optional with Basic the default)."""


@dataclass
class Expansion:
    """What ``expand`` made of a template."""

    resources: list[tuple[dict[str, Any], str]]
    """ARM resources with ids, each with its JSON path in the template."""
    warnings: list[str]
    """Placeholders, parameters without value, copy counts not known."""
    left_out: int = 0
    """Resources whose ``condition`` is false."""


def expand(
    doc: Mapping[str, Any], source: str, parameters: Mapping[str, Any] | None = None
) -> Expansion:
    """Template -> ARM resources with ids, each with its path in the template.

    Args:
        doc: The parsed template.
        source: File name, for messages.
        parameters: Values from a parameters file (lower-case names), over ``defaultValue``.

    Raises:
        InventoryError: an expression that cannot be parsed, an undeclared parameter or
            variable, a bad copy count, or a resource without ``type`` / ``name``; the
            message names the file and the path.
    """
    ev = _Evaluator(source, doc, {k.lower(): v for k, v in (parameters or {}).items()})
    lower = {k.lower(): (k, v) for k, v in doc.items() if isinstance(k, str)}
    key, resources = lower.get("resources", ("resources", []))
    if isinstance(resources, Mapping):  # languageVersion 2.0: resources by symbolic name
        resources = list(resources.values())
    if not isinstance(resources, list):
        raise InventoryError(f"{source}: $.{key}: expected a list of resources")
    out = Expansion([], [])
    _walk(ev, resources, f"$.{key}", None, None, (), out)
    out.warnings = ev.warnings()
    return out


def evaluate(
    doc: Mapping[str, Any], value: Any, source: str = "template", path: str = "$.x",
    parameters: Mapping[str, Any] | None = None,
) -> tuple[Any, list[str]]:
    """One JSON value (``"[concat(...)]"``, an object, ...) evaluated in ``doc``'s scope.

    Returns:
        The value (placeholders as ``Opaque`` strings) and the warnings it caused.
    """
    ev = _Evaluator(source, doc, {k.lower(): v for k, v in (parameters or {}).items()})
    result = ev.value(value, _Ctx(path))
    return result, ev.warnings()


def _walk(
    ev: _Evaluator,
    resources: list[Any],
    path: str,
    parent_type: str | None,
    parent_name: str | None,
    loops: tuple[tuple[str, int], ...],
    out: Expansion,
) -> None:
    for i, res in enumerate(resources):
        where = f"{path}[{i}]"
        if not isinstance(res, Mapping):
            raise InventoryError(f"{ev.source}: {where}: expected a resource object, got {clip(res)}")
        fields = {k.lower(): k for k in res if isinstance(k, str)}
        if "type" not in fields or "name" not in fields:
            raise InventoryError(f"{ev.source}: {where}: resource without type or name")
        copy = res.get(fields["copy"]) if "copy" in fields else None
        if isinstance(copy, Mapping):
            cfields = {str(k).lower(): v for k, v in copy.items()}
            name = str(cfields.get("name", "")).lower()
            count = ev.count(cfields.get("count"), _Ctx(f"{where}.{fields['copy']}.count", loops))
            ev.spend(count, _Ctx(f"{where}.{fields['copy']}.count", loops))
            for n in range(count):
                _one(ev, res, fields, f"{where}[copy {n}]", parent_type, parent_name,
                     (*loops, (name, n)), out)  # fmt: skip
        else:
            _one(ev, res, fields, where, parent_type, parent_name, loops, out)


def _one(
    ev: _Evaluator,
    res: Mapping[str, Any],
    fields: dict[str, str],
    where: str,
    parent_type: str | None,
    parent_name: str | None,
    loops: tuple[tuple[str, int], ...],
    out: Expansion,
) -> None:
    ctx = _Ctx(where, loops)
    if "condition" in fields:
        cond = ev.value(res[fields["condition"]], ctx.at(f"{where}.condition"))
        if not isinstance(cond, Opaque) and not _truth(cond):
            out.left_out += 1
            return
    if "existing" in fields and _truth(ev.value(res[fields["existing"]], ctx.at(f"{where}.existing"))):
        return  # languageVersion 2.0: a reference to a resource deployed elsewhere
    rtype = _text(ev.value(res[fields["type"]], ctx.at(f"{where}.type")))
    if rtype.lower() == "microsoft.resources/deployments":
        _nested(ev, res, where, ctx, out)
        return
    name = _text(ev.value(res[fields["name"]], ctx.at(f"{where}.name")))
    if parent_type and "/" not in rtype:
        rtype = f"{parent_type}/{rtype}"
    if parent_name and name.count("/") < rtype.count("/") - 1:
        name = f"{parent_name}/{name}"
    skip = ("resources", "dependson", "type", "name", "copy", "condition", "comments")
    resolved = _drop_opaque(
        {k: ev.value(v, ctx.at(f"{where}.{k}")) for k, v in res.items() if k.lower() not in skip}
    )
    names = name.split("/")
    default_sku = _SKU_DEFAULTS.get(rtype.lower())
    if default_sku and not any(k.lower() == "sku" and v for k, v in resolved.items()):
        resolved["sku"] = {"name": default_sku}
    rid = ev.resource_id([rtype, *names], ctx, rtype)
    resolved.update(type=rtype, name=names[-1], id=rid)
    _child_ids(resolved, rid)
    out.resources.append((resolved, where))
    if "resources" in fields and isinstance(res[fields["resources"]], list):
        _walk(ev, res[fields["resources"]], f"{where}.{fields['resources']}", rtype, name, loops, out)


def _nested(ev: _Evaluator, res: Mapping[str, Any], where: str, ctx: _Ctx, out: Expansion) -> None:
    """A nested deployment: its inline template's resources, in the scope it asks for.

    ``expressionEvaluationOptions.scope: inner`` evaluates the inner template with its own
    parameters (given under ``properties.parameters``, evaluated here); the default
    ``outer`` evaluates it with this template's parameters and variables.  A linked
    template (``templateLink``) is not fetched: a warning says so.
    """
    props = next((v for k, v in res.items() if k.lower() == "properties"), None)
    if not isinstance(props, Mapping):
        return
    keys = {str(k).lower(): (k, v) for k, v in props.items()}
    base = f"{where}.{next(k for k in res if k.lower() == 'properties')}"
    if "template" not in keys or not isinstance(keys["template"][1], Mapping):
        if "templatelink" in keys:
            link = ev.value(keys["templatelink"][1], ctx.at(f"{base}.templateLink"))
            uri = link.get("uri") or link.get("id") if isinstance(link, Mapping) else link
            ev.notes.append(f"{ev.source}: {base}.templateLink: linked template {clip(uri)} is not "
                            "fetched; load it (and its parameters) as a file of its own")  # fmt: skip
        return
    tkey, inner = keys["template"]
    options = keys.get("expressionevaluationoptions", (None, {}))[1]
    scope = ev.value(options.get("scope", "outer"), ctx) if isinstance(options, Mapping) else "outer"
    if str(scope).lower() != "inner":
        ilower = {str(k).lower(): (k, v) for k, v in inner.items()}
        rkey, resources = ilower.get("resources", ("resources", []))
        if isinstance(resources, list):
            _walk(ev, resources, f"{base}.{tkey}.{rkey}", None, None, ctx.loops, out)
        return
    given: dict[str, Any] = {}
    pkey, params = keys.get("parameters", ("parameters", {}))
    for name, spec in (params or {}).items():
        if isinstance(spec, Mapping) and "value" in spec:
            given[str(name).lower()] = ev.value(spec["value"], ctx.at(f"{base}.{pkey}.{name}.value"))
    sub = expand(inner, ev.source, given)
    prefix = f"{base}.{tkey}"
    out.resources += [(r, prefix + w[1:]) for r, w in sub.resources]
    out.left_out += sub.left_out
    ev.notes += sub.warnings


def _child_ids(resource: dict[str, Any], rid: str) -> None:
    """Give inline children (``properties.subnets[]``, ``frontendIPConfigurations[]``, ...)
    the id ARM will give them: the parent's id, the collection and the child's name."""
    props = next((v for k, v in resource.items() if k.lower() == "properties"), None)
    if not isinstance(props, dict):
        return
    for key, items in props.items():
        if not isinstance(items, list):
            continue
        for item in items:
            if isinstance(item, dict) and isinstance(item.get("name"), str):
                if not any(k.lower() == "id" for k in item):
                    item["id"] = f"{rid}/{key}/{item['name']}"


def _drop_opaque(value: Any) -> Any:
    """Placeholders read as "not known": drop them, except in names and ids (kept as text)."""
    if isinstance(value, Mapping):
        return {
            k: _drop_opaque(v) for k, v in value.items()
            if not isinstance(v, Opaque) or str(k).lower() in ("id", "name")
        }  # fmt: skip
    if isinstance(value, list):
        return [_drop_opaque(v) for v in value if not isinstance(v, Opaque)]
    return value
