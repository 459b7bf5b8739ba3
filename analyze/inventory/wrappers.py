"""Envelopes around Azure documents, as users copy them from docs, the CLI and the portal.

``unwrap(doc)`` returns the documents inside a wrapper, each with the JSON path suffix it
sits at, or None when ``doc`` is not a wrapper (the loader then reads it as it is):

* REST API example files (azure-rest-api-specs ``examples/*.json``, the "Sample response"
  of learn.microsoft.com): ``{"parameters": {...}, "responses": {"200": {"body": ...}}}``:
  the body of the first success response (200, then 201, 202).
* A bare REST response as ``az rest`` prints it, or its ``{"body": ...}`` /
  ``{"statusCode": ..., "body": ...}`` form from tooling: the body.
* The export-template API and ``az group export`` of some CLI versions:
  ``{"template": {...}, "error": ...}``: the template.
* Resource Graph in table form (REST ``resultFormat: table``, old ``az graph query``
  vintages): ``{"data": {"columns": [{"name": ...}], "rows": [[...]]}}``: one object per row.
* ``az deployment group show`` / ``what-if`` style ``{"properties": {"template": {...}}}``
  are not unwrapped (they describe a deployment, not its resources).

Pages in object form (``{"value": [...]}`` from REST and ``az rest``, ``{"data": [...]}``
from ``az graph query``, ``{"count": .., "data": [...], "skip_token": ..}``) and plain lists
are read by the loader itself; portal "JSON view" documents are ordinary ARM resources and
"Export template" gives a template (and a parameters file) -- see ``template.py``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

NAME = "wrappers"
"""Loader name, for messages."""

_SUCCESS = ("200", "201", "202")


def _keys(doc: Mapping[str, Any]) -> dict[str, tuple[str, Any]]:
    return {k.lower(): (k, v) for k, v in doc.items() if isinstance(k, str)}


def unwrap(doc: Any) -> list[tuple[Any, str]] | None:
    """The documents inside the wrapper ``doc`` with their path suffixes, or None.

    Args:
        doc: One parsed JSON / YAML document.

    Returns:
        ``[(inner, ".responses.200.body"), ...]`` when ``doc`` is a wrapper, else None.
    """
    if not isinstance(doc, Mapping):
        return None
    keys = _keys(doc)
    # A REST example: parameters + responses keyed by status code.
    if "responses" in keys and isinstance(keys["responses"][1], Mapping):
        rkey, responses = keys["responses"]
        by_code = {str(k): (k, v) for k, v in responses.items()}
        for code in _SUCCESS:
            if code in by_code and isinstance(by_code[code][1], Mapping):
                ckey, response = by_code[code]
                body = _keys(response).get("body")
                if body is not None and body[1] is not None:
                    return [(body[1], f".{rkey}.{ckey}.{body[0]}")]
        return []  # an example with no success body (a 204 on delete): nothing to read
    # {"body": ...} (with statusCode / headers): a captured REST response.
    if "body" in keys and set(keys) <= {"body", "statuscode", "headers", "status"}:
        return [(keys["body"][1], f".{keys['body'][0]}")]
    # The export-template API: {"template": {...}, "error": ...}.
    if "template" in keys and set(keys) <= {"template", "error"} and isinstance(keys["template"][1], Mapping):
        return [(keys["template"][1], f".{keys['template'][0]}")]
    # Resource Graph table form: {"data": {"columns": [...], "rows": [...]}}.
    if "data" in keys and isinstance(keys["data"][1], Mapping):
        dkey, table = keys["data"]
        tkeys = _keys(table)
        if isinstance(tkeys.get("columns", (0, None))[1], list) and isinstance(tkeys.get("rows", (0, None))[1], list):
            return _table(tkeys["columns"][1], tkeys["rows"][1], f".{dkey}.{tkeys['rows'][0]}")
    return None


def _table(columns: list[Any], rows: list[Any], path: str) -> list[tuple[Any, str]]:
    names = [str(c.get("name")) if isinstance(c, Mapping) else str(c) for c in columns]
    out: list[tuple[Any, str]] = []
    for i, row in enumerate(rows):
        if isinstance(row, list) and len(row) == len(names):
            out.append((dict(zip(names, row, strict=True)), f"{path}[{i}]"))
        else:
            out.append((row, f"{path}[{i}]"))  # the loader names what is wrong with it
    return out
