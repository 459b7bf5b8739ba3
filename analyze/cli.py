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

@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="egresslens")
def cli() -> None:
    """egresslens: which egress path of which VM produced this source IP?"""


cli.add_command(capture_group)

# --- inventory / predict commands (issue 3) -------------------------------------------


@cli.group()
def inventory() -> None:
    """Azure network inventory: native YAML, az / ARM JSON, templates, Service Tags."""


@inventory.command("show")
@click.argument("sources", nargs=-1, required=True, metavar="SOURCE...")
@click.option(
    "--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True,
    help="table: one aligned table per resource type; json: an object of tables + warnings.",
)  # fmt: skip
@fail_cleanly
def inventory_show_cmd(sources: tuple[str, ...], fmt: str) -> None:
    """Load inventory SOURCE files / folders and print the normalized tables."""
    import json as _json

    from analyze.inventory import load as load_inventory
    from capture.cli import note
    from capture.output import to_json_rows, write

    inv = load_inventory(sources)
    tables = inv.tables(display=fmt == "table")
    for message in inv.warnings:
        note(f"warning: {message}")
    if fmt == "json":
        doc = {name: to_json_rows(df) for name, df in tables.items()}
        doc["warnings"] = list(inv.warnings)  # type: ignore[assignment]
        click.echo(_json.dumps(doc, indent=2, ensure_ascii=False))
        return
    for name, df in tables.items():
        click.echo(f"== {name} ({df.height})")
        write(df, "table", None)
    note(f"{sum(df.height for df in tables.values())} records, {len(inv.warnings)} warnings")


@cli.command("predict")
@click.option(
    "--inventory", "sources", multiple=True, required=True, metavar="SOURCE",
    help="Inventory file or folder (repeat for several): YAML, az / ARM JSON, Service Tags.",
)  # fmt: skip
@click.argument("more", nargs=-1, metavar="[SOURCE...]")
@click.option("--vm", default=None, help="Only this VM's ipconfigs.")
@click.option("--destination", default=None, metavar="IP",
              help="Predict for this destination (private paths, specific routes); default: internet.")  # fmt: skip
@click.option("--allowlist", default=None, metavar="NAME|FILE",
              help="Allowlist from the inventory by name, or a file; adds the 'allowed' column.")  # fmt: skip
@click.option(
    "--format", "fmt", type=click.Choice(["table", "json", "csv", "parquet"]), default=None,
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
    from analyze.inventory import load as load_inventory
    from analyze.inventory import load_allowlist
    from capture.cli import note
    from capture.errors import UsageError
    from capture.output import guess_format, write

    if out and out != "-" and (out.endswith(("/", "\\")) or Path(out).is_dir()):
        raise UsageError(f"-o {out!r}: predictions go to a file, not a folder")
    inv = load_inventory(sources + more)
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
    resolved = guess_format(out, fmt)  # type: ignore[arg-type]
    if resolved == "table":
        ordered = prediction.by_importance(preds)
        df = prediction.frame(ordered, with_allowed=chosen is not None)
        write(df, "table", out, table_columns=prediction.TABLE_COLUMNS)
        if not out or out == "-":
            click.echo("\n" + prediction.explain(ordered), nl=False)
        return
    where = write(prediction.frame(preds, with_allowed=chosen is not None), resolved, out)
    if where != "stdout":
        note(f"{len(preds)} predictions -> {where}")


# --- logs commands (issue 4) ----------------------------------------------------------

_LOG_TYPES = (
    "auto", "authlog", "journal", "nginx", "apache", "jsonlog", "w3c", "zeek", "zeekjson",
    "nsgflow", "vnetflow",
)  # fmt: skip


_LOG_TABLE = (
    "ts", "observer", "evidence", "src_ip", "src_port", "dst_port", "state", "ssh_user",
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
@click.option("--strict", is_flag=True, help="Exit with status 1 when any line is rejected.")
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
    """Read log files into connection records (the type is detected from content)."""
    import os
    from pathlib import Path

    import polars as pl

    from analyze.sources import read_logs
    from capture.cli import CliError, note
    from capture.output import guess_format, write

    if follow:
        from analyze.watch import follow_records
        from capture.live import parse_rotate

        if out and out != "-":
            raise click.UsageError("--follow writes to stdout; drop -o")
        limit = parse_rotate(duration)[0] if duration else None
        shown = follow_records(files, lambda frame: write(frame, fmt or "ndjson", None),
                               duration=limit, year=year, tz=tz, observer=observer)  # fmt: skip
        note(f"{shown:,} records")
        return

    result = read_logs(
        files, type=log_type, log_format=log_format, field_map=field_map,  # type: ignore[arg-type]
        year=year, tz=tz, observer=observer,
    )  # fmt: skip
    for message in result.notes:
        note(message)
    size = sum(os.path.getsize(f) for f in files)
    if size > 100_000_000:
        note(f"reading {size / 1e6:,.0f} MB in {len(files)} file(s) ...")
    sink_to = None
    from capture.output import is_special

    if out and out != "-" and not out.endswith(os.sep) and not Path(out).is_dir():
        if guess_format(out, fmt) == "parquet" and not is_special(Path(out)):  # type: ignore[arg-type]
            sink_to = Path(out)
    try:
        if sink_to is not None:
            # Stream straight to Parquet: memory stays bounded whatever the input size.
            from capture.output import check_overwrite

            check_overwrite(sink_to)
            tmp = sink_to.with_name(f".{sink_to.name}.partial")
            sink = result.records.sink_parquet(tmp, lazy=True)
            _, rejects, skipped = pl.collect_all([sink, result.rejects, result.skipped])
            os.replace(tmp, sink_to)
            n_records = pl.scan_parquet(sink_to).select(pl.len()).collect().item()
            where = str(sink_to)
        else:
            records, rejects, skipped = pl.collect_all(
                [result.records, result.rejects, result.skipped]
            )
            n_records = records.height
            where = write(records, fmt, out, table_columns=_LOG_TABLE)  # type: ignore[arg-type]
    except pl.exceptions.PolarsError as exc:
        raise CliError(f"cannot read the logs: {str(exc).splitlines()[0]}") from exc
    n_skipped = int(skipped["skipped"].sum() or 0)
    summary = f"{n_records:,} records, {rejects.height:,} rejected lines, {n_skipped:,} skipped"
    note(summary + ("" if where == "stdout" else f" -> {where}"))
    if rejects.height:
        first = rejects.row(0, named=True)
        note(f"first reject: {first['source']}:{first['lineno']}: {first['line'][:80]!r}")
    if rejects_out:
        write(rejects, None, rejects_out)
    if strict and rejects.height:
        raise SystemExit(1)


cli.add_command(logs_group)

# --- analyze / demo commands (issue 5) ------------------------------------------------


SEVERITIES = ("info", "low", "medium", "high", "critical")


def _when(text: str | None, option: str) -> Any:
    import datetime as dt

    if text is None:
        return None
    try:
        value = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise click.BadParameter(f"not an ISO 8601 time: {text!r}", param_hint=option) from None
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def _emit_analysis(result: Any, fmt: str | None, out: str | None, fail_on: str | None) -> None:
    from pathlib import Path

    from analyze.report import render
    from capture.output import atomic_write_bytes

    for message in result.notes:
        click.echo(f"egresslens: note: {message}", err=True)
    resolved = fmt or (Path(out).suffix.lstrip(".") if out and out != "-" else "table")
    if resolved not in ("table", "json", "csv", "parquet", "html"):
        resolved = "table"
    data = render(result, resolved)
    if out and out != "-":
        atomic_write_bytes(Path(out), data)
    else:
        stream = sys.stdout.buffer
        stream.write(data)
        stream.flush()
    click.echo(
        f"egresslens: {result.connections.height:,} connections from "
        f"{result.addresses.height:,} addresses, {len(result.findings)} findings"
        + (f" -> {out}" if out and out != "-" else ""),
        err=True,
    )
    for message in result.errors:
        click.echo(f"Error: {message}", err=True)
    if result.errors:
        raise SystemExit(2)
    if fail_on:
        threshold = SEVERITIES.index(fail_on)
        if any(SEVERITIES.index(f.severity) >= threshold for f in result.findings):
            raise SystemExit(1)


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
        engine=engine, ray_address=ray_address, progress=tty_progress(),  # type: ignore[arg-type]
    )  # fmt: skip
    _emit_analysis(result, fmt, out, fail_on)
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
@click.option("--since", default=None, help="Only connections from this time (ISO 8601).")
@click.option("--until", default=None, help="Only connections before this time (ISO 8601).")
@click.option("--vm", default=None, help="Only connections whose candidate VMs include VM.")
@click.option("--src", default=None, help="Only connections from this address or CIDR.")
@click.option("--format", "fmt", type=click.Choice(["table", "json", "csv", "parquet", "html"]),
              default=None, help="Report format (default: from the -o extension, else table).")
@output_option
@click.option("--fail-on", type=click.Choice(SEVERITIES), default=None,
              help="Exit 1 when a finding is at or above this severity (for scripts).")
@click.option("--observer", default=None, help="Host name for evidence that names none.")
@click.option("--year", type=int, default=None, help="Year of syslog lines without one.")
@click.option("--tz", default="UTC", show_default=True, help="Zone of syslog times without one.")
@store_options
@force_option
@fail_cleanly
def analyze_cmd(
    evidence: tuple[str, ...], inventory: tuple[str, ...], allowlist: str | None,
    from_vm: tuple[str, ...], since: str | None, until: str | None, vm: str | None,
    src: str | None, fmt: str | None, out: str | None, fail_on: str | None,
    observer: str | None, year: int | None, tz: str, **fleet: Any,
) -> None:
    """Classify every inbound connection's source address, check it against the inventory's
    predictions and the allowlist, and report findings with their fixes."""
    from analyze.pipeline import run

    attributions = {}
    for item in from_vm:
        name, sep, path = item.partition("=")
        if not sep or not name or not path:
            raise click.BadParameter(f"use VM=PATH, not {item!r}", param_hint="--from")
        attributions[path] = name
    if _analyze_store(evidence, inventory, allowlist, attributions, since, until, vm, src, fmt, out, fail_on, **fleet):
        return
    result = run(
        evidence, inventory, allowlist=allowlist, since=_when(since, "--since"),
        until=_when(until, "--until"), vm=vm, src=src, from_vm=attributions,
        observer=observer, year=year, tz=tz,
    )  # fmt: skip
    _emit_analysis(result, fmt, out, fail_on)


@cli.command()
@click.option("--format", "fmt", type=click.Choice(["table", "json", "csv", "parquet", "html"]),
              default=None, help="Report format (default: table).")
@output_option
@force_option
@fail_cleanly
def demo(fmt: str | None, out: str | None) -> None:
    """Analyze the bundled sample in pcaps/demo/: the article's load balancer story."""
    from pathlib import Path

    from analyze.pipeline import run

    root = Path(__file__).resolve().parent.parent / "pcaps"
    sample = root / "demo"
    if not sample.is_dir():
        raise CliError(f"the bundled sample is missing: {sample}")
    evidence = [str(sample / n) for n in ("webapp-vm.pcap", "auth.log", "access.log")]
    inventory = [str(sample / "inventory.yaml"), str(sample / "ServiceTags_Public_lab.json")]
    click.echo(
        "egresslens demo: evidence from destination host webapp-vm; inventory: the article's "
        "Basic load balancer mylb (pool, no rules) and lbvm; allowlist web-app", err=True,
    )  # fmt: skip
    result = run(evidence, inventory, allowlist="web-app")
    _emit_analysis(result, fmt, out, None)


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
@click.option("--duration", default=None, help="Stop after this long (30s, 5m); default: until Ctrl-C.")
@click.option("--year", type=int, default=None, help="Year of syslog lines without one.")
@click.option("--tz", default="UTC", show_default=True, help="Zone of syslog times without one.")
@click.option("--observer", default=None, help="Host name for evidence that names none.")
@fail_cleanly
def watch(
    logfiles: tuple[str, ...], inventory: tuple[str, ...], allowlist: str | None, iface: str | None,
    ports: str, bpf: str | None, from_start: bool, duration: str | None, year: int | None,
    tz: str, observer: str | None,
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
    if iface:
        port_set = parse_ports(ports)
        expr = bpf or " or ".join(f"port {p}" for p in sorted(port_set or ()))
        source = live.ScapySource(iface, expr or None)
        options = live.LiveOptions(out=None, rotate_s=1.0, observer=observer, pcap=False)

        def on_records(records: Any) -> None:
            with_lock = records.filter(records["state"] != "open") if records.height else records
            watcher.records(with_lock)

        capture_obj = live.LiveCapture(source, options, status=lambda _l: None, on_records=on_records)
        threads.append(threading.Thread(target=capture_obj.run, name="egresslens-live", daemon=True))
    if logfiles:
        threads.append(threading.Thread(
            target=follow, args=(logfiles, watcher.records),
            kwargs={"from_start": from_start, "stop": stop, "year": year, "tz": tz, "observer": observer},
            name="egresslens-follow", daemon=True,
        ))  # fmt: skip
    click.echo(f"egresslens: watching {', '.join(list(logfiles) + ([iface] if iface else []))}; Ctrl-C stops", err=True)
    old = {s: signal.signal(s, lambda *_: stop.set()) for s in (signal.SIGINT, signal.SIGTERM)}
    for t in threads:
        t.start()
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
    click.echo(f"egresslens: {watcher.connections:,} connections, {len(watcher.reported)} findings", err=True)


def main() -> None:
    """Console-script entry point."""
    try:
        cli.main(prog_name="egresslens", standalone_mode=True)
    except KeyboardInterrupt:
        sys.exit(130)
