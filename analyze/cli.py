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

# --- logs commands (issue 4) ----------------------------------------------------------

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
