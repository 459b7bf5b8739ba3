"""The ``egresslens`` command: root group and the analysis commands.

Commands stay thin: parse options, call one library function, render.  Library errors
(``EgresslensError``) become one-line messages with exit status 2.
"""

from __future__ import annotations

import sys

import click

from capture.cli import capture as capture_group
from capture.cli import CliError, fail_cleanly, format_option, output_option  # noqa: F401

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
@format_option
@output_option
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
    if out and out != "-" and not out.endswith(os.sep) and not Path(out).is_dir():
        if guess_format(out, fmt) == "parquet":  # type: ignore[arg-type]
            sink_to = Path(out)
    try:
        if sink_to is not None:
            # Stream straight to Parquet: memory stays bounded whatever the input size.
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


@cli.command()
@format_option
@fail_cleanly
def demo(fmt: str | None) -> None:
    """Run on the bundled sample captures in pcaps/ and print their connections."""
    from pathlib import Path

    from capture.output import TABLE_COLUMNS, write
    from capture.read import read_captures

    folder = Path(__file__).resolve().parent.parent / "pcaps"
    files = sorted(str(p) for p in folder.glob("*.pcap*"))
    if not files:
        raise CliError(f"no sample captures found in {folder}")
    result = read_captures(files)
    write(result.records, fmt, None, table_columns=TABLE_COLUMNS)  # type: ignore[arg-type]
    click.echo(result.summary(), err=True)


def main() -> None:
    """Console-script entry point."""
    try:
        cli.main(prog_name="egresslens", standalone_mode=True)
    except KeyboardInterrupt:
        sys.exit(130)
