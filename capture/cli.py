"""The ``egresslens capture`` group (mounted by the root group in ``analyze/cli.py``).

Also home of the small CLI helpers every command shares (exit statuses, error handling,
--format / -o), because this module and ``analyze/cli.py`` are the only ones that import
click.
"""

from __future__ import annotations

import enum
import functools
import os
import re
import sys
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

import click

from capture.errors import EgresslensError
from capture.output import FORMATS, TABLE_COLUMNS, overwriting, resolve, write_to

F = TypeVar("F", bound=Callable[..., Any])


class Status(enum.IntEnum):
    """Exit statuses, the same for every command (the README's table)."""

    OK = 0
    """Clean."""
    FINDINGS = 1
    """Findings at or above ``--fail-on``, or rejected lines with ``--strict``."""
    ERROR = 2
    """A usage error, or nothing could be read."""
    PARTIAL = 3
    """Partial input: a truncated capture, an unreadable file among others, a gzip cut short."""
    PIPE = 141
    """stdout was closed early (``| head``): 128 + SIGPIPE, what a shell reports for a
    tool the pipe stopped."""


_PRECEDENCE = (Status.PIPE, Status.ERROR, Status.FINDINGS, Status.PARTIAL)
"""When several apply: 2 beats 1 and 1 beats 3."""

_PARTIAL_NOTE = re.compile(r": truncated (after|inside)|gzip stream cut short")
"""Notes of the readers that mean the input stopped early (the records before are kept)."""


def worst(statuses: Iterable[Status | int]) -> Status:
    """The status to exit with when several apply (2 beats 1, 1 beats 3)."""
    given = {Status(s) for s in statuses}
    return next((s for s in _PRECEDENCE if s in given), Status.OK)


def is_partial(message: str) -> bool:
    """Whether a reader's note says the input was cut short (status 3)."""
    return bool(_PARTIAL_NOTE.search(message))


def input_status(*, unreadable: int, read: int, partial: bool = False) -> Status:
    """The status of reading inputs: 2 when nothing could be read, 3 when some inputs (or
    their ends) could not be, else 0."""
    if unreadable and not read:
        return Status.ERROR
    if unreadable or partial:
        return Status.PARTIAL
    return Status.OK


def finish(*statuses: Status | int) -> None:
    """End the command with the status that wins (nothing to do for 0)."""
    code = worst(statuses)
    if code:
        raise SystemExit(int(code))


class CliError(click.ClickException):
    """A one-line error on stderr and exit status 2 (bad input / usage)."""

    exit_code = int(Status.ERROR)


def stdout_closed() -> None:
    """The reader of stdout went away: send what is left to /dev/null, so that the final
    flush at exit does not print a second error, and leave quietly."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):
        pass  # not a real file descriptor (CliRunner): nothing to silence
    raise SystemExit(int(Status.PIPE))


def fail_cleanly(func: F) -> F:
    """Turn the package's errors into a one-line message and exit 2, never a traceback;
    a closed stdout ends the command quietly with status 141."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except BrokenPipeError:
            stdout_closed()
        except EgresslensError as exc:
            raise CliError(str(exc)) from exc
        except OSError as exc:  # a file or socket the OS refused: say which, no traceback
            where = f"{exc.filename}: " if exc.filename else ""
            raise CliError(f"{where}{exc.strerror or exc}") from exc

    return wrapper  # type: ignore[return-value]


format_option = click.option(
    "--format", "fmt", type=click.Choice(FORMATS), default=None,
    help="Output format (default: from the -o extension, else table).",
)  # fmt: skip
output_option = click.option(
    "-o", "--output", "out", default=None, metavar="OUT",
    help="Output file (format from its extension), '-' for stdout, or DIR/ for a records folder.",
)  # fmt: skip
strict_option = click.option(
    "--strict", is_flag=True,
    help="Stop at the first unreadable file (exit 2); rejected lines exit 1.",
)  # fmt: skip


def force_option(func: F) -> F:
    """``--force``: let the command replace existing output files (refused otherwise)."""

    @functools.wraps(func)
    def wrapper(*args: Any, force: bool = False, **kwargs: Any) -> Any:
        with overwriting(force):
            return func(*args, **kwargs)

    return click.option(  # type: ignore[no-any-return]
        "--force", is_flag=True, help="Overwrite existing output files."
    )(wrapper)


def note(message: str) -> None:
    """A status or warning line on stderr."""
    click.echo(f"egresslens: {message}", err=True)


def parse_ports(text: str | None) -> frozenset[int] | None:
    """``22,80,443`` -> {22, 80, 443}; raises click.BadParameter on junk."""
    if not text:
        return None
    try:
        ports = frozenset(int(p) for p in text.split(",") if p.strip())
    except ValueError:
        raise click.BadParameter(f"not a port list: {text!r}", param_hint="--ports") from None
    if not ports or any(not 0 < p < 65536 for p in ports):
        raise click.BadParameter(f"ports must be 1-65535: {text!r}", param_hint="--ports")
    return ports


@click.group()
def capture() -> None:
    """Packets -> connection records (saved captures or a live interface)."""


@capture.command("read")
@click.argument("files", nargs=-1, required=True, metavar="FILE...")
@format_option
@output_option
@click.option("--observer", default=None, help="Destination host name to record as observer.")
@click.option(
    "--backend", type=click.Choice(["fast", "scapy", "tshark"]), default="fast",
    show_default=True,
    help="fast: vectorized reader; scapy: full scapy decode; tshark: through pyshark.",
)  # fmt: skip
@click.option("--ports", default=None, help="Only connections to/from these ports (22,80,443).")
@click.option("--bpf", default=None, help="Only packets matching this BPF (tcpdump) filter.")
@strict_option
@force_option
@fail_cleanly
def read_cmd(
    files: tuple[str, ...],
    fmt: str | None,
    out: str | None,
    observer: str | None,
    backend: str,
    ports: str | None,
    bpf: str | None,
    strict: bool,
) -> None:
    """Read pcap / pcapng files (optionally .gz; '-' for stdin) or records folders into
    connection records."""
    target = resolve(out, fmt, folder="a records folder")
    result, read_ok = _read_inputs(files, backend=backend, observer=observer,
                                   ports=parse_ports(ports), bpf=bpf, strict=strict)  # fmt: skip
    for message in result.warnings:
        note(f"warning: {message}")
    status = input_status(
        unreadable=len(result.errors), read=read_ok + bool(result.records.height),
        partial=any(is_partial(m) for m in result.warnings + result.errors),
    )  # fmt: skip
    if status != Status.ERROR:
        where = write_to(result.records, target, table_columns=TABLE_COLUMNS)
        note(result.summary() + ("" if where == "stdout" else f" -> {where}"))
    for message in result.errors:
        click.echo(f"Error: {message}", err=True)
    finish(status)


def _read_inputs(
    files: tuple[str, ...], *, backend: str, observer: str | None, ports: frozenset[int] | None,
    bpf: str | None, strict: bool,
) -> tuple[Any, int]:  # fmt: skip
    """Captures and records folders of ``capture read`` as one ``ReadResult``, and how many
    inputs were read whole.  ``strict`` stops at the first unreadable one (a ``CliError``)."""
    import polars as pl

    from capture.errors import InputError
    from capture.read import ReadResult, read_captures
    from capture.records import read_records, split_inputs
    from capture.schema import SCHEMA

    inputs = split_inputs(files)
    if inputs.skipped:
        names = ", ".join(p.name for p in inputs.skipped[:5]) + (", ..." if len(inputs.skipped) > 5 else "")
        note(f"skipped {len(inputs.skipped)} file(s) that are not captures or records ({names})")
    result = ReadResult(records=SCHEMA.to_frame())
    frames: list[pl.DataFrame] = []
    # --strict stops at the first unreadable file: read one at a time to find it.
    for batch in ([[f] for f in inputs.captures] if strict else [inputs.captures]) if inputs.captures else []:
        part = read_captures(batch, backend=backend, observer=observer, ports=ports, bpf=bpf)  # type: ignore[arg-type]
        if strict and part.errors:
            raise CliError(part.errors[0])
        result.files += part.files
        result.stats.merge(part.stats)
        result.warnings.extend(part.warnings)
        result.errors.extend(part.errors)
        frames.append(part.records)
    read_ok = result.files - len(result.errors)
    for item in inputs.records:
        try:
            records = read_records(item)
        except InputError as exc:
            if strict:
                raise
            result.errors.append(str(exc))
            continue
        if ports:
            wanted = pl.Series(sorted(ports), dtype=pl.UInt16)
            records = records.filter(pl.col("src_port").is_in(wanted) | pl.col("dst_port").is_in(wanted))
        frames.append(records)
        read_ok += 1
    if frames:
        result.records = pl.concat(frames, how="vertical")
    return result, read_ok


@capture.command("live")
@click.option("-i", "--interface", "iface", default=None, help="Interface to capture on.")
@click.option("--ports", default=None, help="Capture only these TCP/UDP ports (22,80,443).")
@click.option("--bpf", default=None, help="BPF filter (tcpdump syntax); overrides --ports.")
@click.option("-o", "--out", "--output", "out_dir", type=click.Path(file_okay=False), default=None,
              help="Records folder to write (rotating Parquet files, plus pcaps).")
@click.option("--rotate", default="60s", show_default=True,
              help="Rotate files every TIME (60s, 5m) or SIZE of captured bytes (100MB).")
@click.option("--duration", default=None, help="Stop after this long (30s, 5m).")
@click.option("--count", type=click.IntRange(min=1), default=None, help="Stop after N packets.")
@click.option("--backend", type=click.Choice(["ring", "scapy", "tshark"]), default="ring", show_default=True,
              help="ring: AF_PACKET TPACKET_V3 memory-mapped ring; scapy: AF_PACKET socket read "
              "through scapy; tshark: Wireshark's dumpcap. All with a kernel BPF filter.")
@click.option("--user", default=None, help="Drop root to this user once the socket is open (like tcpdump -Z).")
@click.option("--observer", default=None, help="Host name recorded as observer (default: this host).")
@click.option("--pcap/--no-pcap", default=True, show_default=True, help="Also keep the raw packets as rotating pcaps.")
@click.option("--replay", default=None, hidden=True, help="Replay a saved capture as if live (testing).")
@click.option("--store", "store_url", default=None, metavar="URL",
              help="Also ingest each rotation into this store (folder or abfs://), as --observer.")
@fail_cleanly
def live_cmd(
    iface: str | None, ports: str | None, bpf: str | None, out_dir: str | None, rotate: str,
    duration: str | None, count: int | None, backend: str, user: str | None,
    observer: str | None, pcap: bool, replay: str | None, store_url: str | None = None,
) -> None:
    """Capture live on the destination host into a records folder (Ctrl-C stops cleanly)."""
    import socket
    from pathlib import Path

    from capture import live

    port_set = parse_ports(ports)
    if not bpf and port_set:
        bpf = " or ".join(f"port {p}" for p in sorted(port_set))
    rotate_s, rotate_bytes = live.parse_rotate(rotate)
    duration_s = live.parse_rotate(duration)[0] if duration else None
    if replay:
        source: live.PacketSource = live.ReplaySource(replay)
    elif not iface:
        raise click.UsageError("give -i IFACE")
    elif backend == "tshark":
        source = live.TsharkSource(iface, bpf)
    elif backend == "ring":
        source = live.RingSource(iface, bpf)
    else:
        source = live.ScapySource(iface, bpf)
    out = Path(out_dir) if out_dir else None
    if user:
        live.drop_privileges(user, out)
    options = live.LiveOptions(
        out=out, rotate_s=rotate_s, rotate_bytes=rotate_bytes, duration_s=duration_s,
        count=count, observer=observer or socket.gethostname(), pcap=pcap and out is not None,
        ports=port_set,
    )  # fmt: skip
    result = live.LiveCapture(source, options, on_records=_store_sink(store_url, options.observer, source.name)).run()
    note(
        f"{result.packets:,} packets, {result.connections:,} connections, "
        f"kernel: {result.kernel_received:,} received, {result.kernel_dropped:,} dropped"
        + (f" -> {out}" if out else "")
    )


def _store_sink(url: str | None, observer: str | None, name: str) -> Any:
    """``capture live --store``: each rotation's records go into the store (issue 11)."""
    if url is None:
        return None
    from analyze.store import Store, ingest_frame  # the store lives with analyze; imported only here

    store = Store.open(url)
    seq = iter(range(1, 1 << 62))

    def sink(records: Any) -> None:
        ingest_frame(store, records, name=f"live:{name}#{next(seq)}", observer=observer or "")

    return sink
