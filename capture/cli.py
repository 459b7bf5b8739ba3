"""The ``egresslens capture`` group (mounted by the root group in ``analyze/cli.py``).

Also home of the small CLI helpers every command shares (error handling, --format / -o),
because this module and ``analyze/cli.py`` are the only ones that import click.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

import click

from capture.errors import EgresslensError
from capture.output import FORMATS, TABLE_COLUMNS, overwriting, write

F = TypeVar("F", bound=Callable[..., Any])


class CliError(click.ClickException):
    """A one-line error on stderr and exit status 2 (bad input / usage)."""

    exit_code = 2


def fail_cleanly(func: F) -> F:
    """Turn the package's errors into a one-line message and exit 2, never a traceback."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
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
    help="Output file, '-' for stdout, or DIR/ for a records folder.",
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
) -> None:
    """Read pcap / pcapng files (optionally .gz; '-' for stdin) into connection records."""
    from capture.read import read_captures

    result = read_captures(
        list(files), backend=backend, observer=observer, ports=parse_ports(ports), bpf=bpf
    )
    for message in result.warnings:
        note(f"warning: {message}")
    if result.records.height or not result.errors:
        where = write(result.records, fmt, out, table_columns=TABLE_COLUMNS)  # type: ignore[arg-type]
        note(result.summary() + ("" if where == "stdout" else f" -> {where}"))
    if result.errors:
        for message in result.errors:
            click.echo(f"Error: {message}", err=True)
        raise SystemExit(2)


@capture.command("live")
@click.option("-i", "--interface", "iface", default=None, help="Interface to capture on.")
@click.option("--ports", default=None, help="Capture only these TCP/UDP ports (22,80,443).")
@click.option("--bpf", default=None, help="BPF filter (tcpdump syntax); overrides --ports.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default=None,
              help="Records folder to write (rotating Parquet files, plus pcaps).")
@click.option("--rotate", default="60s", show_default=True,
              help="Rotate files every TIME (60s, 5m) or SIZE of captured bytes (100MB).")
@click.option("--duration", default=None, help="Stop after this long (30s, 5m).")
@click.option("--count", type=click.IntRange(min=1), default=None, help="Stop after N packets.")
@click.option("--backend", type=click.Choice(["scapy", "tshark"]), default="scapy", show_default=True,
              help="scapy: AF_PACKET socket with a kernel BPF filter; tshark: through pyshark.")
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
