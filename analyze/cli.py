"""The ``egresslens`` command: root group and the analysis commands.

Commands stay thin: parse options, call one library function, render.  Library errors
(``EgresslensError``) become one-line messages with exit status 2.
"""

from __future__ import annotations

import sys
from typing import Any

import click

from capture.cli import capture as capture_group
from capture.cli import CliError, fail_cleanly, force_option, format_option, output_option  # noqa: F401
from capture.cli import Status, finish, input_status, is_partial, strict_option, worst  # noqa: F401

@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="egresslens")
def cli() -> None:
    """egresslens: which egress path of which VM produced this source IP?"""


cli.add_command(capture_group)

# --- inventory / predict commands (issue 3) -------------------------------------------


@cli.group()
def inventory() -> None:
    """Azure network inventory: native YAML, az / ARM JSON, templates, Service Tags."""


def _inventory_sources(sources: tuple[str, ...]) -> list[str]:
    """``-`` is the inventory on stdin (JSON or YAML, gzip too)."""
    from analyze.evidence import spool_stdin

    return [str(spool_stdin(decompress=True)) if s == "-" else s for s in sources]


def _load_inventory(sources: tuple[str, ...], *, with_report: bool = False) -> Any:
    """Load inventory sources (and, ``with_report``, the load report: resources by type);
    errors name stdin ``stdin``, not its temporary copy."""
    from analyze.evidence import display
    from analyze.inventory import load as load_inventory
    from analyze.inventory.load import load_report
    from capture.errors import EgresslensError

    try:
        if with_report:
            return load_report(_inventory_sources(sources))
        return load_inventory(_inventory_sources(sources))
    except EgresslensError as exc:
        raise CliError(display(str(exc))) from exc


@inventory.command("show")
@click.argument("sources", nargs=-1, required=True, metavar="SOURCE...")
@click.option(
    "--format", "fmt", type=click.Choice(["table", "json"]), default=None,
    help="table: one aligned table per resource type; json: an object of tables + warnings "
    "(default: from the -o extension, else table).",
)  # fmt: skip
@click.option("-o", "--output", "out", default=None, metavar="OUT",
              help="Output file (.json, or --format table), or '-' for stdout.")  # fmt: skip
@force_option
@fail_cleanly
def inventory_show_cmd(sources: tuple[str, ...], fmt: str | None, out: str | None) -> None:
    """Load inventory SOURCE files / folders ('-' for stdin) and print the normalized tables."""
    import json as _json

    from analyze.evidence import display, rename_stdin
    from capture.cli import note
    from capture.output import emit, render_table, resolve, to_json_rows

    target = resolve(out, fmt, formats=("table", "json"), folder=None, what="inventory tables")
    inv, report = _load_inventory(sources, with_report=True)
    tables = {name: rename_stdin(df, "source") for name, df in inv.tables(display=target.fmt == "table").items()}
    by_type = _resources_by_type(report)
    for message in inv.warnings:
        note(f"warning: {display(message)}")
    if target.fmt == "json":
        doc = {name: to_json_rows(df) for name, df in tables.items()}
        doc["resources_by_type"] = to_json_rows(by_type)
        doc["warnings"] = [display(m) for m in inv.warnings]  # type: ignore[assignment]
        emit(target, (_json.dumps(doc, indent=2, ensure_ascii=False) + "\n").encode())
        return
    text = "".join(f"== {name} ({df.height})\n" + render_table(df) for name, df in tables.items())
    if by_type.height:
        loaded, skipped = (int(by_type[c].sum()) for c in ("loaded", "skipped"))
        text += f"== Azure resources by type ({loaded} loaded, {skipped} skipped)\n" + render_table(by_type)
    where = emit(target, text.encode())
    if report.left_out:
        note(f"{report.left_out} template resources left out: their condition is false")
    note(f"{sum(df.height for df in tables.values())} records, {len(inv.warnings)} warnings"
         + ("" if where == "stdout" else f" -> {where}"))  # fmt: skip


def _resources_by_type(report: Any) -> Any:
    """Azure resources read and skipped, one row per type (``inventory show``)."""
    import polars as pl

    kinds = sorted(set(report.loaded) | set(report.skipped), key=str.lower)
    return pl.DataFrame(
        {"type": kinds, "loaded": [report.loaded.get(k, 0) for k in kinds],
         "skipped": [report.skipped.get(k, 0) for k in kinds]},
        schema={"type": pl.String, "loaded": pl.UInt32, "skipped": pl.UInt32},
    )  # fmt: skip


@cli.command("predict")
@click.option(
    "--inventory", "sources", multiple=True, required=True, metavar="SOURCE",
    help="Inventory file or folder (repeat for several; '-' for stdin): YAML, az / ARM JSON, Service Tags.",
)  # fmt: skip
@click.argument("more", nargs=-1, metavar="[SOURCE...]")
@click.option("--vm", default=None, help="Only this VM's ipconfigs.")
@click.option("--destination", default=None, metavar="IP",
              help="Predict for this destination (private paths, specific routes); default: internet.")  # fmt: skip
@click.option("--allowlist", default=None, metavar="NAME|FILE",
              help="Allowlist from the inventory by name, or a file; adds the 'allowed' column.")  # fmt: skip
@click.option(
    "--format", "fmt", type=click.Choice(["table", "json", "ndjson", "csv", "parquet"]), default=None,
    help="Output format (default: from the -o extension, else table).",
)  # fmt: skip
@click.option("-o", "--output", "out", default=None, metavar="OUT",
              help="Output file (format from its extension), or '-' for stdout.")  # fmt: skip
@force_option
@fail_cleanly
def predict_cmd(
    sources: tuple[str, ...],
    more: tuple[str, ...],
    vm: str | None,
    destination: str | None,
    allowlist: str | None,
    fmt: str | None,
    out: str | None,
) -> None:
    """Expected egress of every VM NIC ipconfig, with the reason and the fix."""
    from pathlib import Path

    from analyze import predict as prediction
    from analyze.inventory import load_allowlist
    from capture.cli import note
    from capture.errors import UsageError
    from capture.output import FORMATS, emit, format_bytes, resolve, write_to

    target = resolve(out, fmt, formats=FORMATS, folder=None, what="predictions")
    inv = _load_inventory(sources + more)
    for message in inv.warnings:
        note(f"warning: {message}")
    chosen = None
    if allowlist is not None:
        chosen = inv.allowlist(allowlist)
        if chosen is None:
            if not Path(allowlist).exists():
                names = ", ".join(a.name for a in inv.allowlists.values()) or "none loaded"
                raise UsageError(f"--allowlist {allowlist!r}: no such allowlist or file ({names})")
            chosen = load_allowlist(allowlist)
    preds = prediction.predict(inv, destination, allowlist=chosen, vm=vm)
    if target.fmt == "table":
        ordered = prediction.by_importance(preds)
        df = prediction.frame(ordered, with_allowed=chosen is not None)
        text = format_bytes(df, "table", prediction.TABLE_COLUMNS)
        if target.path is None:
            text += ("\n" + prediction.explain(ordered)).encode()
        emit(target, text)
        return
    where = write_to(prediction.frame(preds, with_allowed=chosen is not None), target)
    if where != "stdout":
        note(f"{len(preds)} predictions -> {where}")


# --- logs commands (issue 4) ----------------------------------------------------------

_LOG_TYPES = (
    "auto", "authlog", "journal", "nginx", "apache", "jsonlog", "w3c", "zeek", "zeekjson",
    "nsgflow", "vnetflow",
)  # fmt: skip


_LOG_TABLE = (
    "ts", "observer", "evidence", "src_ip", "src_host", "src_port", "dst_port", "state", "ssh_user",
    "ssh_auth", "http_method", "http_path", "http_status", "origin",
)  # fmt: skip


@click.group("logs")
def logs_group() -> None:
    """Logs -> connection records (auth.log, journal, access logs, W3C, Zeek, flow logs)."""


@logs_group.command("read")
@click.argument("files", nargs=-1, required=True, metavar="FILE...")
@click.option(
    "--type", "log_type", type=click.Choice(_LOG_TYPES), default="auto", show_default=True,
    help="Log type of every file; auto detects each file's type from its content.",
)  # fmt: skip
@click.option(
    "--log-format", default=None, metavar="FMT",
    help="nginx log_format or Apache LogFormat string (or combined, common, vhost_combined).",
)  # fmt: skip
@click.option(
    "--field-map", default=None, metavar="K=PATH,...",
    help="JSON access logs: where fields are, e.g. src_ip=request.remote_ip,ts=time.",
)  # fmt: skip
@click.option(
    "--year", type=int, default=None,
    help="Year of each syslog file's first line (default: from the file's mtime).",
)  # fmt: skip
@click.option(
    "--tz", default="UTC", show_default=True, metavar="ZONE",
    help="Zone of syslog times that carry none (IANA name, e.g. Europe/Paris).",
)  # fmt: skip
@click.option("--observer", default=None, help="Host name for evidence that names none.")
@click.option("--rejects", "rejects_out", default=None, metavar="FILE",
              help="Write rejected lines (source, lineno, line) to FILE (.csv/.ndjson/.parquet).")
@click.option("--strict", is_flag=True,
              help="Exit with status 1 when any line is rejected; stop at the first unreadable file.")
@click.option("-f", "--follow", is_flag=True,
              help="After reading, follow the files (through rotation) and print new records as NDJSON.")
@click.option("--duration", default=None, hidden=True, help="With --follow: stop after this long.")
@format_option
@output_option
@force_option
@fail_cleanly
def logs_read_cmd(
    files: tuple[str, ...],
    log_type: str,
    log_format: str | None,
    field_map: str | None,
    year: int | None,
    tz: str,
    observer: str | None,
    rejects_out: str | None,
    strict: bool,
    follow: bool,
    duration: str | None,
    fmt: str | None,
    out: str | None,
) -> None:
    """Read log files, folders of them or records folders ('-' for stdin) into connection
    records (the type is detected from content)."""
    import polars as pl

    from analyze.evidence import scan_log_inputs
    from capture.cli import CliError, note
    from capture.output import resolve, write_lazy, write_to

    if follow:
        return _follow_logs(files, fmt, out, duration, year=year, tz=tz, observer=observer, log_type=log_type)
    target = resolve(out, fmt, folder="a records folder")
    rejects_target = resolve(rejects_out, None, folder=None, what="rejects") if rejects_out else None
    inputs = scan_log_inputs(files, log_type=log_type, log_format=log_format, field_map=field_map,
                             year=year, tz=tz, observer=observer, strict=strict)  # fmt: skip
    for message in inputs.notes:
        note(message)
    if inputs.size > 100_000_000:
        note(f"reading {inputs.size / 1e6:,.0f} MB of logs ...")
    status = input_status(unreadable=len(inputs.errors), read=inputs.read,
                          partial=any(is_partial(n) for n in inputs.notes))  # fmt: skip
    if status != Status.ERROR:
        try:
            where, n_records, (rejects, skipped) = write_lazy(
                inputs.records, target, inputs.rejects, inputs.skipped, table_columns=_LOG_TABLE
            )
        except pl.exceptions.PolarsError as exc:
            raise CliError(f"cannot read the logs: {str(exc).splitlines()[0]}") from exc
        n_skipped = int(skipped["skipped"].sum() or 0)
        summary = f"{n_records:,} records, {rejects.height:,} rejected lines, {n_skipped:,} skipped"
        note(summary + ("" if where == "stdout" else f" -> {where}"))
        if rejects.height:
            first = rejects.row(0, named=True)
            note(f"first reject: {first['source']}:{first['lineno']}: {first['line'][:80]!r}")
            if strict:
                status = worst([status, Status.FINDINGS])
        if rejects_target is not None:
            write_to(rejects, rejects_target)
    for message in inputs.errors:
        click.echo(f"Error: {message}", err=True)
    finish(status)


def _follow_logs(files: tuple[str, ...], fmt: str | None, out: str | None, duration: str | None,
                 **options: Any) -> None:  # fmt: skip
    """``logs read --follow``: NDJSON (or --format) on stdout as new lines arrive."""
    from analyze.watch import follow_records
    from capture.cli import note
    from capture.live import parse_rotate
    from capture.output import resolve, write_to

    if out and out != "-":
        raise click.UsageError("--follow writes to stdout; drop -o")
    if "-" in files:
        raise click.UsageError("--follow follows files; for stdin, drop --follow")
    target = resolve(None, fmt or "ndjson")
    limit = parse_rotate(duration)[0] if duration else None
    failures: list[str] = []
    shown = follow_records(files, lambda frame: write_to(frame, target), duration=limit,
                           on_error=failures.append, **options)  # fmt: skip
    note(f"{shown:,} records")
    for message in failures:
        click.echo(f"Error: {message}", err=True)
    finish(input_status(unreadable=len(failures), read=len(files) - len(failures)))


cli.add_command(logs_group)

# --- analyze / demo commands (issue 5) ------------------------------------------------


SEVERITIES = ("info", "low", "medium", "high", "critical")


def _when(text: str | None, option: str) -> Any:
    from analyze.timespec import parse_time

    if text is None:
        return None
    try:
        return parse_time(text)
    except ValueError as e:
        raise click.BadParameter(str(e), param_hint=option) from None


ANALYSIS_TABLES = ("findings", "addresses", "connections")
ANALYSIS_FORMATS = ("table", "json", "ndjson", "csv", "parquet", "html")


def _analysis_target(out: str | None, fmt: str | None) -> Any:
    """The -o rule for ``analyze`` / ``demo`` (checked before anything is read); a report
    folder also takes ``--format html`` (its ``report.html``)."""
    from capture.output import resolve

    target = resolve(out, None if fmt == "html" else fmt, formats=ANALYSIS_FORMATS, folder="the report folder")
    if fmt == "html" and target.kind != "folder":
        target = resolve(out, fmt, formats=ANALYSIS_FORMATS, folder="the report folder")
    return target


def _analysis_table(result: Any, what: str) -> Any:
    """One table of an analysis: the connections (with their ``findings`` ids), the
    addresses, or the findings as rows."""
    import polars as pl

    from analyze.report import finding_dict

    if what == "connections":
        return result.connections
    if what == "addresses":
        return result.addresses
    rows = [finding_dict(f) for f in result.findings]
    return pl.DataFrame(rows, infer_schema_length=None) if rows else pl.DataFrame({"kind": []}, schema={"kind": pl.String})


class _Progress:
    """Progress of long work on stderr through rich: only on a terminal, never with -q."""

    def __init__(self, quiet: bool) -> None:
        self._status: Any = None
        if quiet or not sys.stderr.isatty():
            return
        from rich.console import Console

        console = Console(stderr=True)
        if console.is_terminal:
            self._status = console.status("egresslens: starting", spinner="dots")

    def __enter__(self) -> _Progress:
        if self._status is not None:
            self._status.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        if self._status is not None:
            self._status.stop()

    def __call__(self, text: str) -> None:
        if self._status is not None:
            self._status.update(f"egresslens: {text}")


def _emit_analysis(
    result: Any, fmt: str | None, out: str | None, fail_on: str | None, what: str | None = None,
    strict: bool = False, *, full: bool = False, quiet: bool = False, progress: Any = None,
) -> None:  # fmt: skip
    from analyze.report import render, verdict, write_folder
    from capture.output import emit, format_bytes, write_to

    target = _analysis_target(out, fmt)
    for message in result.notes:
        click.echo(f"egresslens: note: {message}", err=True)
    status = input_status(
        unreadable=len(result.errors), read=len(result.evidence),
        partial=any(is_partial(m) for m in result.notes),
    )  # fmt: skip
    if status != Status.ERROR:
        if target.kind == "folder":
            write_folder(result, target.path, html=fmt == "html", progress=progress)
            where = str(target.path)
        else:
            if progress is not None:
                progress(f"writing the {target.fmt} report")
            if target.fmt in ("csv", "parquet", "ndjson") or (what and target.fmt != "html"):
                table = _analysis_table(result, what or "connections")
                if target.fmt == "table":
                    where = emit(target, format_bytes(table, "table", None))
                else:
                    where = write_to(table, target)
            else:
                where = emit(target, render(result, target.fmt, full=full))  # type: ignore[arg-type]
        if not quiet:
            click.echo(f"egresslens: {verdict(result)}" + ("" if where == "stdout" else f" -> {where}"), err=True)
    for message in result.errors:
        click.echo(f"Error: {message}", err=True)
    findings = Status.OK
    if fail_on:
        threshold = SEVERITIES.index(fail_on)
        if any(SEVERITIES.index(f.severity) >= threshold for f in result.findings):
            findings = Status.FINDINGS
    if strict and any(e.rejects for e in result.evidence):
        findings = Status.FINDINGS
    finish(status, findings)


# --- the fleet store: ingest, analyze --store (issues 11, 12) ---------------------------


def store_options(func: Any) -> Any:
    """``analyze``'s options for a store: --store, --hosts, --engine, --ray-address."""
    for option in reversed([
        click.option("--store", "store_url", default=None, metavar="URL",
                     help="Analyze this store (folder or abfs://CONTAINER/PATH) instead of EVIDENCE."),
        click.option("--hosts", default=None, metavar="NAME[,NAME]",
                     help="With --store: only these observers."),
        click.option("--engine", type=click.Choice(["local", "ray"]), default="local", show_default=True,
                     help="With --store: one process, or a Ray cluster."),
        click.option("--ray-address", default=None, metavar="ADDR",
                     help="With --engine ray: attach to this cluster (default: start a local one)."),
    ]):  # fmt: skip
        func = option(func)
    return func


def _analyze_store(
    evidence: tuple[str, ...], inventory: tuple[str, ...], allowlist: str | None,
    attributions: dict[str, str], since: str | None, until: str | None, vm: str | None,
    src: str | None, fmt: str | None, out: str | None, fail_on: str | None, *,
    store_url: str | None, hosts: str | None, engine: str, ray_address: str | None,
    what: str | None = None, strict: bool = False, full: bool = False, quiet: bool = False,
) -> bool:  # fmt: skip
    """Run ``analyze --store``; False when this is an analysis of files."""
    if store_url is None:
        if not evidence:
            raise click.UsageError("give EVIDENCE... or --store URL")
        for name, value in (("--hosts", hosts), ("--ray-address", ray_address)):
            if value:
                raise click.UsageError(f"{name} needs --store")
        if engine != "local":
            raise click.UsageError("--engine needs --store")
        return False
    if evidence:
        raise click.UsageError("give EVIDENCE... or --store URL, not both (ingest the files first)")
    if ray_address and engine != "ray":
        raise click.UsageError("--ray-address needs --engine ray")
    from analyze.fleet import analyze_store, tty_progress

    names = [h.strip() for h in hosts.split(",") if h.strip()] if hosts else None
    result = analyze_store(
        store_url, inventory, allowlist=allowlist, since=_when(since, "--since"),
        until=_when(until, "--until"), vm=vm, src=src, hosts=names, from_vm=attributions,
        engine=engine, ray_address=ray_address, progress=None if quiet else tty_progress(),  # type: ignore[arg-type]
    )  # fmt: skip
    _emit_analysis(result, fmt, out, fail_on, what, strict, full=full, quiet=quiet)
    return True


@cli.command("ingest")
@click.argument("evidence", nargs=-1, required=True, metavar="EVIDENCE...")
@click.option("--store", "store_url", required=True, metavar="URL",
              help="The store: a folder, or abfs://CONTAINER/PATH (credentials from AZURE_* variables).")
@click.option("--observer", default=None, metavar="NAME",
              help="Observer of every record (default: each record's own; none is an error).")
@click.option("--year", type=int, default=None, help="Year of syslog lines without one.")
@click.option("--tz", default="UTC", show_default=True, help="Zone of syslog times without one.")
@fail_cleanly
def ingest_cmd(evidence: tuple[str, ...], store_url: str, observer: str | None, year: int | None, tz: str) -> None:
    """Append EVIDENCE's connection records to a store, partitioned by observer and day
    (the same file again for the same observer is a no-op)."""
    from analyze.store import Store, ingest
    from capture.cli import note

    result = ingest(evidence, Store.open(store_url), observer=observer, year=year, tz=tz)
    for message in result.notes:
        note(f"note: {message}")
    for who, path in result.skipped:
        note(f"note: {path}: already in the store for observer {who}; skipped")
    parts = sum(len(m.parts) for m in result.written)
    note(
        f"ingested {len(result.written)} evidence files ({result.records:,} records, {parts} parts), "
        f"{len(result.skipped)} already there -> {store_url}"
    )
    for message in result.errors:
        click.echo(f"Error: {message}", err=True)
    if result.errors:
        raise SystemExit(2)


@cli.command("analyze")
@click.argument("evidence", nargs=-1, required=False, metavar="EVIDENCE...")
@click.option("--inventory", "inventory", multiple=True, required=True, metavar="SRC",
              help="Inventory sources: YAML, az / ARM JSON, Service Tags, allowlists (repeat).")
@click.option("--allowlist", default=None, metavar="NAME|FILE",
              help="Allowlist to check against (default: the inventory's only one).")
@click.option("--from", "from_vm", multiple=True, metavar="VM=PATH",
              help="Evidence under PATH comes from VM (the article's test from a known VM).")
@click.option("--since", default=None, help="Only connections from this time: ISO 8601, -1h, '2 days ago', today, yesterday.")
@click.option("--until", default=None, help="Only connections before this time (the same forms as --since).")
@click.option("--vm", default=None, help="Only connections whose candidate VMs include VM.")
@click.option("--src", default=None, help="Only connections from this address or CIDR.")
@click.option("--format", "fmt", type=click.Choice(["table", "json", "ndjson", "csv", "parquet", "html"]),
              default=None, help="Report format (default: from the -o extension, else table).")
@click.option("--what", type=click.Choice(ANALYSIS_TABLES), default=None,
              help="The table to write (csv / parquet default: connections, with their findings ids).")
@click.option("-o", "--output", "out", default=None, metavar="OUT",
              help="Output file (format from its extension), '-' for stdout, or DIR/ for the report folder.")
@click.option("--fail-on", type=click.Choice(SEVERITIES), default=None,
              help="Exit 1 when a finding is at or above this severity (for scripts).")
@click.option("--type", "log_type", type=click.Choice(_LOG_TYPES), default="auto", show_default=True,
              help="Log type of every log; auto detects each file's type from its content.")
@strict_option
@click.option("--top", type=click.IntRange(1), default=20, show_default=True,
              help="Source addresses listed per incident (all are counted and in the addresses table).")
@click.option("--all", "full", is_flag=True, help="Terminal view: every incident, address and connection.")
@click.option("-q", "--quiet", is_flag=True, help="No progress and no verdict line on stderr.")
@click.option("--observer", default=None, help="Host name for evidence that names none.")
@click.option("--year", type=int, default=None, help="Year of syslog lines without one.")
@click.option("--tz", default="UTC", show_default=True, help="Zone of syslog times without one.")
@store_options
@force_option
@fail_cleanly
def analyze_cmd(
    evidence: tuple[str, ...], inventory: tuple[str, ...], allowlist: str | None,
    from_vm: tuple[str, ...], since: str | None, until: str | None, vm: str | None,
    src: str | None, fmt: str | None, what: str | None, out: str | None, fail_on: str | None,
    log_type: str, strict: bool, top: int, full: bool, quiet: bool, observer: str | None,
    year: int | None, tz: str, **fleet: Any,
) -> None:
    """Classify every inbound connection's source address, check it against the inventory's
    predictions and the allowlist, and report incidents with their fixes (-o DIR/: a
    report folder)."""
    from analyze.pipeline import run

    _analysis_target(out, fmt)
    inventory = tuple(_inventory_sources(inventory))
    attributions = {}
    for item in from_vm:
        name, sep, path = item.partition("=")
        if not sep or not name or not path:
            raise click.BadParameter(f"use VM=PATH, not {item!r}", param_hint="--from")
        attributions[path] = name
    if _analyze_store(evidence, inventory, allowlist, attributions, since, until, vm, src, fmt, out, fail_on,
                      what=what, strict=strict, full=full, quiet=quiet, **fleet):  # fmt: skip
        return
    with _Progress(quiet) as progress:
        result = run(
            evidence, inventory, allowlist=allowlist, since=_when(since, "--since"),
            until=_when(until, "--until"), vm=vm, src=src, from_vm=attributions,
            observer=observer, year=year, tz=tz, log_type=log_type, strict=strict, top=top,
            progress=progress,
        )  # fmt: skip
        _emit_analysis(result, fmt, out, fail_on, what, strict, full=full, quiet=quiet, progress=progress)


@cli.command()
@click.option("--format", "fmt", type=click.Choice(["table", "json", "csv", "parquet", "html"]),
              default=None, help="Report format (default: table).")
@output_option
@click.option("--all", "full", is_flag=True, help="Terminal view: every incident, address and connection.")
@click.option("-q", "--quiet", is_flag=True, help="No progress and no verdict line on stderr.")
@force_option
@fail_cleanly
def demo(fmt: str | None, out: str | None, full: bool, quiet: bool) -> None:
    """Analyze the bundled sample in pcaps/demo/: the article's load balancer story."""
    from pathlib import Path

    from analyze.pipeline import run

    root = Path(__file__).resolve().parent.parent / "pcaps"
    sample = root / "demo"
    _analysis_target(out, fmt)
    if not sample.is_dir():
        raise CliError(f"the bundled sample is missing: {sample}")
    evidence = [str(sample / n) for n in ("webapp-vm.pcap", "auth.log", "access.log")]
    inventory = [str(sample / "inventory.yaml"), str(sample / "ServiceTags_Public_lab.json")]
    click.echo(
        "egresslens demo: evidence from destination host webapp-vm; inventory: the article's "
        "Basic load balancer mylb (pool, no rules) and lbvm; allowlist web-app", err=True,
    )  # fmt: skip
    with _Progress(quiet) as progress:
        result = run(evidence, inventory, allowlist="web-app", progress=progress)
        _emit_analysis(result, fmt, out, None, full=full, quiet=quiet, progress=progress)


@cli.command()
@click.argument("logfiles", nargs=-1, metavar="[LOGFILE...]")
@click.option("--inventory", "inventory", multiple=True, required=True, metavar="SRC",
              help="Inventory sources: YAML, az / ARM JSON, Service Tags, allowlists (repeat).")
@click.option("--allowlist", default=None, metavar="NAME|FILE",
              help="Allowlist to check against (default: the inventory's only one).")
@click.option("-i", "--interface", "iface", default=None, help="Also capture live on this interface.")
@click.option("--ports", default="22,80,443", show_default=True, help="Live capture: ports to watch.")
@click.option("--bpf", default=None, help="Live capture: BPF filter; overrides --ports.")
@click.option("--from-start", is_flag=True, help="Read the log files from their start, not their end.")
@click.option("--type", "log_type", type=click.Choice(_LOG_TYPES), default="auto", show_default=True,
              help="Log type of every log file; auto detects each file's type from its content.")
@click.option("--duration", default=None, help="Stop after this long (30s, 5m); default: until Ctrl-C.")
@click.option("--year", type=int, default=None, help="Year of syslog lines without one.")
@click.option("--tz", default="UTC", show_default=True, help="Zone of syslog times without one.")
@click.option("--observer", default=None, help="Host name for evidence that names none.")
@fail_cleanly
def watch(
    logfiles: tuple[str, ...], inventory: tuple[str, ...], allowlist: str | None, iface: str | None,
    ports: str, bpf: str | None, from_start: bool, log_type: str, duration: str | None,
    year: int | None, tz: str, observer: str | None,
) -> None:
    """Follow logs (through rotation) and/or a live capture; print each new connection
    classified, and findings as they trigger."""
    import signal
    import threading
    import time
    from pathlib import Path

    from analyze.inventory import load
    from analyze.pipeline import resolve_allowlist
    from analyze.predict import predict
    from analyze.watch import Watcher, follow
    from capture import live
    from capture.cli import parse_ports

    if not logfiles and not iface:
        raise click.UsageError("give LOGFILE... and/or -i IFACE")
    for f in logfiles:
        if not Path(f).exists():
            raise CliError(f"{f}: no such file")
    inv = load(inventory)
    preds = predict(inv)
    lock = threading.Lock()

    def emit(line: str) -> None:
        with lock:
            click.echo(line)

    watcher = Watcher(inventory=inv, predictions=preds, allowlist=resolve_allowlist(inv, allowlist), emit=emit)
    stop = threading.Event()
    threads = []
    capture_obj = None
    failures: list[str] = []
    broken: list[Status] = []
    following = threading.Event()

    def guarded(run: Any, *args: Any, **kwargs: Any) -> None:
        # A thread's failure is one line and an exit status, never a thread traceback.
        try:
            run(*args, **kwargs)
        except BrokenPipeError:
            broken.append(Status.PIPE)
        except Exception as exc:  # noqa: BLE001 (reported as one line below)
            failures.append(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
        finally:
            if broken:
                stop.set()

    if iface:
        port_set = parse_ports(ports)
        expr = bpf or " or ".join(f"port {p}" for p in sorted(port_set or ()))
        source = live.ScapySource(iface, expr or None)
        options = live.LiveOptions(out=None, rotate_s=1.0, observer=observer, pcap=False)

        def on_records(records: Any) -> None:
            with_lock = records.filter(records["state"] != "open") if records.height else records
            watcher.records(with_lock)

        capture_obj = live.LiveCapture(source, options, status=lambda _l: None, on_records=on_records)
        threads.append(threading.Thread(target=guarded, args=(capture_obj.run,), name="egresslens-live", daemon=True))
    if logfiles:
        threads.append(threading.Thread(
            target=guarded, args=(follow, logfiles, watcher.records),
            kwargs={"from_start": from_start, "stop": stop, "year": year, "tz": tz, "observer": observer,
                    "on_error": failures.append, "log_type": log_type, "ready": following},
            name="egresslens-follow", daemon=True,
        ))  # fmt: skip
    old = {s: signal.signal(s, lambda *_: stop.set()) for s in (signal.SIGINT, signal.SIGTERM)}
    for t in threads:
        t.start()
    if logfiles:  # "watching" means: a line written from now on is seen
        following.wait(timeout=30)
    click.echo(f"egresslens: watching {', '.join(list(logfiles) + ([iface] if iface else []))}; Ctrl-C stops", err=True)
    limit = live.parse_rotate(duration)[0] if duration else None
    started = time.time()
    try:
        while not stop.is_set() and (limit is None or time.time() - started < limit):
            if not any(t.is_alive() for t in threads):
                break
            stop.wait(0.2)
    finally:
        stop.set()
        if capture_obj is not None:
            capture_obj.stop()
        for t in threads:
            t.join(timeout=10)
        for s, h in old.items():
            signal.signal(s, h)
    if Status.PIPE in broken:
        from capture.cli import stdout_closed

        stdout_closed()
    click.echo(f"egresslens: {watcher.connections:,} connections, {len(watcher.reported)} findings", err=True)
    for message in failures:
        click.echo(f"Error: {message}", err=True)
    sources = len(logfiles) + bool(iface)
    finish(*broken, input_status(unreadable=len(failures), read=sources - len(failures)))


def main() -> None:
    """Console-script entry point."""
    try:
        cli.main(prog_name="egresslens", standalone_mode=True)
    except KeyboardInterrupt:
        sys.exit(130)
