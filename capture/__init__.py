"""capture: packets (saved pcap/pcapng or live interfaces) -> connection records."""

from capture.schema import COLUMNS, SCHEMA

__all__ = ["COLUMNS", "SCHEMA"]
