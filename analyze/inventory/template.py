"""ARM deployment templates (``az group export``, portal "Export template").

Spec: https://learn.microsoft.com/azure/azure-resource-manager/templates/template-expressions
Resources are listed with ``type`` + ``name`` instead of ids, and cross-references are
template expressions.  ``expand`` evaluates the subset exports use: ``resourceId()``,
``concat()``, ``format()``, ``parameters()``, ``variables()``, ``toLower()``,
``subscription().subscriptionId`` and ``resourceGroup().name``, and turns every resource
into the ARM shape ``azure.py`` reads (with an ``id``), child resources included.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping
from typing import Any

from capture.errors import InventoryError, clip

NAME = "arm-template"
"""Loader name, for messages."""

_ID_RE = re.compile(r"^/subscriptions/([^/]+)/resourcegroups/([^/]+)/", re.IGNORECASE)
_TOKEN_RE = re.compile(
    r"\s*(?:(?P<str>'(?:[^']|'')*')|(?P<num>-?\d+)|(?P<name>[A-Za-z_][\w]*)|(?P<punct>[(),.\[\]]))"
)


def detect(doc: Any) -> bool:
    """Whether ``doc`` is a deployment template."""
    if not isinstance(doc, Mapping):
        return False
    keys = {k.lower(): v for k, v in doc.items() if isinstance(k, str)}
    schema = str(keys.get("$schema", ""))
    return "deploymenttemplate" in schema.lower() or (
        isinstance(keys.get("resources"), list) and "contentversion" in keys
    )


class _Evaluator:
    def __init__(self, doc: Mapping[str, Any], source: str) -> None:
        self.source = source
        lower = {k.lower(): v for k, v in doc.items() if isinstance(k, str)}
        self.parameters: dict[str, Any] = {
            k.lower(): v for k, v in (lower.get("parameters") or {}).items()
        }
        self.variables: dict[str, Any] = {
            k.lower(): v for k, v in (lower.get("variables") or {}).items()
        }
        self._resolving: set[str] = set()
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

    # -- values ---------------------------------------------------------------------------

    def value(self, val: Any, path: str) -> Any:
        if isinstance(val, str):
            text = val.strip()
            if text.startswith("[[") :
                return text[1:]
            if text.startswith("[") and text.endswith("]"):
                return self.expression(text[1:-1], path)
            return val
        if isinstance(val, list):
            return [self.value(v, f"{path}[{i}]") for i, v in enumerate(val)]
        if isinstance(val, Mapping):
            return {k: self.value(v, f"{path}.{k}") for k, v in val.items()}
        return val

    def expression(self, text: str, path: str) -> Any:
        tokens = self._tokens(text, path)
        pos, result = self._expr(tokens, 0, path, text)
        if pos != len(tokens):
            raise self._err(path, f"unexpected {tokens[pos][1]!r} in expression", text)
        return result

    def _err(self, path: str, message: str, text: str) -> InventoryError:
        return InventoryError(f"{self.source}: {path}: {message}: {clip('[' + text + ']')}")

    def _tokens(self, text: str, path: str) -> list[tuple[str, str]]:
        out: list[tuple[str, str]] = []
        pos = 0
        while pos < len(text):
            if text[pos:].strip() == "":
                break
            m = _TOKEN_RE.match(text, pos)
            if m is None:
                raise self._err(path, f"cannot read expression at offset {pos}", text)
            kind = m.lastgroup or "punct"
            out.append((kind, m.group(kind)))
            pos = m.end()
        return out

    def _expr(self, toks: list[tuple[str, str]], pos: int, path: str, text: str) -> tuple[int, Any]:
        if pos >= len(toks):
            raise self._err(path, "expression ends early", text)
        kind, tok = toks[pos]
        if kind == "str":
            value: Any = tok[1:-1].replace("''", "'")
            pos += 1
        elif kind == "num":
            value, pos = int(tok), pos + 1
        elif kind == "name":
            if tok.lower() in ("true", "false") and (pos + 1 >= len(toks) or toks[pos + 1][1] != "("):
                return pos + 1, tok.lower() == "true"
            if pos + 1 >= len(toks) or toks[pos + 1][1] != "(":
                raise self._err(path, f"expected '(' after {tok}", text)
            pos += 2
            args: list[Any] = []
            while True:
                if pos < len(toks) and toks[pos][1] == ")":
                    pos += 1
                    break
                pos, arg = self._expr(toks, pos, path, text)
                args.append(arg)
                if pos < len(toks) and toks[pos][1] == ",":
                    pos += 1
                elif pos < len(toks) and toks[pos][1] == ")":
                    pos += 1
                    break
                else:
                    raise self._err(path, "expected ',' or ')'", text)
            value = self._call(tok, args, path, text)
        else:
            raise self._err(path, f"unexpected {tok!r}", text)
        # property access and indexing: subscription().subscriptionId, x[0]
        while pos < len(toks) and toks[pos][1] in (".", "["):
            if toks[pos][1] == ".":
                if pos + 1 >= len(toks) or toks[pos + 1][0] != "name":
                    raise self._err(path, "expected a property name after '.'", text)
                prop = toks[pos + 1][1]
                if not isinstance(value, Mapping):
                    raise self._err(path, f"property {prop!r} of a non-object", text)
                found = {k.lower(): v for k, v in value.items()}
                if prop.lower() not in found:
                    raise self._err(path, f"no property {prop!r}", text)
                value, pos = found[prop.lower()], pos + 2
            else:
                pos, index = self._expr(toks, pos + 1, path, text)
                if pos >= len(toks) or toks[pos][1] != "]":
                    raise self._err(path, "expected ']'", text)
                pos += 1
                try:
                    value = value[index]
                except (KeyError, IndexError, TypeError):
                    raise self._err(path, f"cannot index with {index!r}", text) from None
        return pos, value

    def _call(self, name: str, args: list[Any], path: str, text: str) -> Any:
        fn = name.lower()
        if fn == "parameters":
            return self._lookup(self.parameters, args, "parameter", path, text, param=True)
        if fn == "variables":
            return self._lookup(self.variables, args, "variable", path, text, param=False)
        if fn == "concat":
            if args and all(isinstance(a, list) for a in args):
                return [x for a in args for x in a]
            return "".join(_text(a) for a in args)
        if fn == "format":
            if not args:
                raise self._err(path, "format() needs arguments", text)
            fmt = str(args[0])
            return re.sub(
                r"\{(\d+)(?::[^}]*)?\}",
                lambda m: _text(args[1 + int(m.group(1))]) if 1 + int(m.group(1)) < len(args) else m.group(0),
                fmt,
            )
        if fn in ("tolower", "toupper"):
            s = _text(args[0]) if args else ""
            return s.lower() if fn == "tolower" else s.upper()
        if fn == "string":
            return _text(args[0]) if args else ""
        if fn == "subscription":
            return {"subscriptionId": self.subscription, "id": f"/subscriptions/{self.subscription}"}
        if fn == "resourcegroup":
            return {
                "name": self.group,
                "id": f"/subscriptions/{self.subscription}/resourceGroups/{self.group}",
                "location": "",
            }
        if fn == "resourceid":
            return self._resource_id([_text(a) for a in args], path, text)
        raise self._err(path, f"unsupported template function {name}()", text)

    def _lookup(
        self, table: dict[str, Any], args: list[Any], what: str, path: str, text: str, *, param: bool
    ) -> Any:
        if len(args) != 1:
            raise self._err(path, f"{what}s() takes one name", text)
        key = str(args[0]).lower()
        if key not in table:
            raise self._err(path, f"{what} {args[0]!r} is not defined", text)
        if key in self._resolving:
            raise self._err(path, f"{what} {args[0]!r} refers to itself", text)
        self._resolving.add(key)
        try:
            spec = table[key]
            if param:
                if not isinstance(spec, Mapping) or "defaultValue" not in spec:
                    raise self._err(path, f"parameter {args[0]!r} has no defaultValue", text)
                spec = spec["defaultValue"]
            return self.value(spec, f"{what}s.{args[0]}")
        finally:
            self._resolving.discard(key)

    def _resource_id(self, args: list[str], path: str, text: str) -> str:
        type_at = next((i for i, a in enumerate(args) if "/" in a), None)
        if type_at is None or type_at > 2:
            raise self._err(path, "resourceId() without a resource type", text)
        scope = args[:type_at]
        sub = scope[0] if len(scope) == 2 else self.subscription
        group = scope[-1] if scope else self.group
        namespace, *types = args[type_at].split("/")
        names = args[type_at + 1 :]
        if len(names) != len(types):
            raise self._err(path, f"resourceId() of {args[type_at]} needs {len(types)} name(s)", text)
        tail = "/".join(f"{t}/{n}" for t, n in zip(types, names, strict=True))
        return f"/subscriptions/{sub}/resourceGroups/{group}/providers/{namespace}/{tail}"


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def expand(doc: Mapping[str, Any], source: str) -> list[tuple[dict[str, Any], str]]:
    """Template -> ARM resources with ids, each with its path in the template.

    Raises:
        InventoryError: an expression that cannot be evaluated, or a resource without
            ``type`` / ``name``; the message names the file and the path.
    """
    ev = _Evaluator(doc, source)
    lower = {k.lower(): (k, v) for k, v in doc.items() if isinstance(k, str)}
    key, resources = lower.get("resources", ("resources", []))
    if not isinstance(resources, list):
        raise InventoryError(f"{source}: $.{key}: expected a list of resources")
    out: list[tuple[dict[str, Any], str]] = []
    _walk(ev, resources, f"$.{key}", None, None, out)
    return out


def _walk(
    ev: _Evaluator,
    resources: list[Any],
    path: str,
    parent_type: str | None,
    parent_name: str | None,
    out: list[tuple[dict[str, Any], str]],
) -> None:
    for i, res in enumerate(resources):
        where = f"{path}[{i}]"
        if not isinstance(res, Mapping):
            raise InventoryError(f"{ev.source}: {where}: expected a resource object, got {clip(res)}")
        fields = {k.lower(): k for k in res if isinstance(k, str)}
        if "type" not in fields or "name" not in fields:
            raise InventoryError(f"{ev.source}: {where}: resource without type or name")
        rtype = _text(ev.value(res[fields["type"]], f"{where}.type"))
        name = _text(ev.value(res[fields["name"]], f"{where}.name"))
        if parent_type and "/" not in rtype:
            rtype = f"{parent_type}/{rtype}"
        if parent_name and name.count("/") < rtype.count("/") - 1:
            name = f"{parent_name}/{name}"
        resolved = {
            k: ev.value(v, f"{where}.{k}")
            for k, v in res.items()
            if k.lower() not in ("resources", "dependson", "type", "name")
        }
        names = name.split("/")
        resolved.update(
            type=rtype,
            name=names[-1],
            id=ev._resource_id([rtype, *names], where, rtype),
        )
        out.append((resolved, where))
        if "resources" in fields and isinstance(res[fields["resources"]], list):
            _walk(ev, res[fields["resources"]], f"{where}.{fields['resources']}", rtype, name, out)
