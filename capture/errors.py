"""The package's one exception tree, shared by ``capture`` and ``analyze``.

::

    EgresslensError
    ├── InputError              bad input: names the file and the line / packet / JSON path
    │   ├── NotACapture         the file is not pcap, pcapng or gzip of either
    │   ├── CorruptCapture      a record or block length that cannot be right
    │   ├── ParseError          a log line or inventory value that cannot be read
    │   └── InventoryError      an inventory document that is not what it claims to be
    ├── CaptureError            live capture and external tools
    │   ├── InterfaceError      no such interface
    │   ├── PermissionDenied    no right to open a raw socket
    │   └── ToolMissing         tshark / tcpdump / libpcap not installed
    └── UsageError              option values that contradict each other

The CLI catches ``EgresslensError`` and prints its message on one line (exit 2).  A
truncated capture is not an exception: it gives partial records plus a warning.
"""

from __future__ import annotations


class EgresslensError(Exception):
    """Base of every error egresslens raises on purpose."""


class InputError(EgresslensError):
    """Bad input.  The message names the file and where in it."""


class NotACapture(InputError):
    """The file is not a pcap, pcapng, or gzip-compressed capture."""


class CorruptCapture(InputError):
    """A capture record or block whose header cannot be right."""


class ParseError(InputError):
    """A line or value that cannot be parsed."""


class InventoryError(InputError):
    """An inventory document that cannot be loaded."""


class CaptureError(EgresslensError):
    """Live capture or an external capture tool failed."""


class InterfaceError(CaptureError):
    """The interface does not exist or is down."""


class PermissionDenied(CaptureError):
    """No permission to capture (needs root or CAP_NET_RAW)."""


class ToolMissing(CaptureError):
    """An external program or library egresslens needs is not installed."""


class UsageError(EgresslensError):
    """Options that cannot be used together, or out of range."""


def clip(text: object, width: int = 80) -> str:
    """``repr`` of offending input, cut to about ``width`` characters for messages."""
    r = repr(text)
    return r if len(r) <= width else r[: width - 3] + "..."
