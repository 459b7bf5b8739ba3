"""The connection-record contract (DESIGN.md "Connection records"), declared once.

Every producer of records (pcap reading, live capture, log sources) emits frames in
``SCHEMA``; every consumer (correlation, classification, reports) reads them. Nobody
re-types the column list: import ``SCHEMA`` / ``COLUMNS`` and the vocabularies below.
"""

from __future__ import annotations

from typing import Final, Literal, get_args

import polars as pl

# --- closed vocabularies: Python Literals and the matching polars Enums -------------

EvidenceKind = Literal["pcap", "live", "authlog", "weblog", "w3c", "zeek", "flowlog"]
"""Where a piece of evidence came from."""

Proto = Literal["tcp", "udp", "icmp", "other"]
"""Transport protocol of a connection or flow."""

Service = Literal["ssh", "http", "https", "other"]
"""Application protocol, decided by content (banner, request line, ClientHello), not port."""

State = Literal["attempt", "established", "rejected", "closed", "reset", "partial", "open"]
"""Connection state at the end of the evidence.

``attempt``: SYN seen, never answered.  ``established``: handshake completed and no FIN or
RST seen before the evidence ended.  ``rejected``: RST answered the SYN.  ``closed``: FIN
seen.  ``reset``: RST after the handshake.  ``partial``: the connection began before the
capture (no SYN seen).  ``open``: a live capture's row for a connection still running at a
rotation; the same ``conn_id`` comes again later and readers keep the latest row.
"""

SshAuth = Literal[
    "accepted",
    "failed",
    "partial",
    "postponed",
    "invalid_user",
    "denied",
    "refused",
    "max_attempts",
    "timeout",
    "protocol_error",
    "negotiation_failed",
    "closed_preauth",
    "disconnected",
    "connected",
]
"""Outcome of SSH authentication as sshd, PAM and tcp wrappers log it (auth.log / journal).

``accepted``: ``Accepted <method> for``.  ``failed``: ``Failed <method> for`` a valid user,
PAM ``Authentication failure`` / ``pam_unix(sshd:auth): authentication failure``.
``partial`` / ``postponed``: one step of multi-step authentication.  ``invalid_user``: no
such account (``Invalid user``, ``for invalid user``, PAM ``illegal user``).  ``denied``: the
account exists but sshd's configuration refuses it (``AllowUsers`` / ``DenyUsers`` /
``AllowGroups`` / ``DenyGroups``, ``not in any group``, ``account is locked``, a missing
shell, ``ROOT LOGIN REFUSED``).  ``refused``: tcp wrappers (``refused connect from``).
``max_attempts``: ``maximum authentication attempts exceeded`` / ``Too many authentication
failures``.  ``timeout``: ``LoginGraceTime`` ran out before authentication.
``protocol_error``: the client broke the protocol before authentication (no or a bad
identification string, ``banner exchange`` / ``kex_exchange_identification`` errors, a bad
MAC).  ``negotiation_failed``: ``Unable to negotiate`` (no common algorithm).
``closed_preauth``: the client went away before authenticating.  ``disconnected``: a session
that ended after authentication.  ``connected``: only ``Connection from`` was seen.
``FAILED_AUTH`` lists the outcomes that count as a failed authentication.
"""

FAILED_AUTH: Final[tuple[SshAuth, ...]] = (
    "failed",
    "invalid_user",
    "denied",
    "refused",
    "max_attempts",
    "protocol_error",
    "negotiation_failed",
)
"""The ``ssh_auth`` outcomes that count as a failed authentication (``auth_failures``):
credentials refused, an unknown or refused account, a refused client, and the protocol-level
failures before authentication that brute-force and scanning tools cause.  ``timeout`` and
``closed_preauth`` are not in it: a slow or vanished client has not failed anything."""

EgressClass = Literal[
    "lb_frontend",
    "instance_public_ip",
    "nat_gateway",
    "firewall",
    "default_snat",
    "private",
    "forced_tunnel",
    "none",
    "local",
    "external",
    "unknown",
]
"""DESIGN.md's class table: the one vocabulary of predict, classify and every output."""

EgressVia = Literal["outbound_rule", "lb_rule", "nat_rule"]
"""For ``lb_frontend``: which load balancer construct gives the VM its frontend address."""


def _enum(literal: object) -> pl.Enum:
    return pl.Enum(list(get_args(literal)))


EVIDENCE: Final = _enum(EvidenceKind)
PROTO: Final = _enum(Proto)
SERVICE: Final = _enum(Service)
STATE: Final = _enum(State)
SSH_AUTH: Final = _enum(SshAuth)
EGRESS_CLASS: Final = _enum(EgressClass)
EGRESS_VIA: Final = _enum(EgressVia)

# --- the record schema ---------------------------------------------------------------

SCHEMA: Final = pl.Schema(
    {
        # Stable id of the connection within its evidence (like Zeek's uid).
        "conn_id": pl.String,
        # First evidence: the SYN, the first packet, or the log line.
        "ts": pl.Datetime("us", "UTC"),
        # Destination host that saw it (log hostname, live host, --observer).
        "observer": pl.String,
        # Evidence kinds merged into this row.
        "evidence": pl.List(EVIDENCE),
        "src_ip": pl.String,
        # The client's host name where a log gives a name instead of an address (sshd with
        # UseDNS yes, tcp wrappers); never resolved.
        "src_host": pl.String,
        "src_port": pl.UInt16,
        "dst_ip": pl.String,
        "dst_port": pl.UInt16,
        "proto": PROTO,
        "service": SERVICE,
        "state": STATE,
        "duration": pl.Duration("us"),
        # Payload bytes and packets, originator -> responder and back (Zeek's counting).
        "orig_bytes": pl.UInt64,
        "resp_bytes": pl.UInt64,
        "orig_pkts": pl.UInt64,
        "resp_pkts": pl.UInt64,
        # SSH identification strings ("SSH-2.0-OpenSSH_9.2p1 Debian-2"), without CR LF.
        "ssh_client": pl.String,
        "ssh_server": pl.String,
        # From auth.log / journal.
        "ssh_user": pl.String,
        "ssh_auth": SSH_AUTH,
        "ssh_method": pl.Categorical(),
        # First HTTP request of the connection (Host, or the TLS SNI for https).
        "http_method": pl.Categorical(),
        "http_host": pl.String,
        "http_path": pl.String,
        "http_status": pl.UInt16,
        "http_user_agent": pl.String,
        "http_xff": pl.String,
        # Provenance, one entry per piece of evidence: "file:line" or "file#packet".
        "origin": pl.List(pl.String),
    }
)

COLUMNS: Final = tuple(SCHEMA.names())


def empty_records() -> pl.DataFrame:
    """An empty frame in the record schema."""
    return SCHEMA.to_frame()
