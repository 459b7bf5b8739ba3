"""The ``egresslens`` command: root group and the analysis commands.

Commands stay thin: parse options, call one library function, render.  Library errors
(``EgresslensError``) become one-line messages with exit status 2.
"""

from __future__ import annotations

import sys

import click

from capture.cli import capture as capture_group
from capture.cli import fail_cleanly, format_option, output_option  # noqa: F401 (shared)

@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="egresslens")
def cli() -> None:
    """egresslens: which egress path of which VM produced this source IP?"""


cli.add_command(capture_group)

# --- inventory / predict commands (issue 3) -------------------------------------------

# --- logs commands (issue 4) ----------------------------------------------------------

# --- analyze / demo commands (issue 5) ------------------------------------------------


def main() -> None:
    """Console-script entry point."""
    try:
        cli.main(prog_name="egresslens", standalone_mode=True)
    except KeyboardInterrupt:
        sys.exit(130)
