"""Generate large synthetic logs for bench_logs.py: an auth.log and an nginx combined log.

    python bench/gen_logs.py [--auth-lines 2000000] [--nginx-lines 5000000] [--out bench/out]

The auth.log mixes sshd connections (VERBOSE "Connection from", accepted and failed
passwords, invalid users, pre-auth closes, scanners, rsyslog "message repeated", PAM
failures without a port, AllowUsers refusals, tcp wrappers, pre-auth timeouts named by pid)
with the daemons that share the file (CRON, systemd-logind, sudo, pam sessions), about 60 %
sshd.
Deterministic (fixed seed), so runs are comparable.
"""

from __future__ import annotations

import argparse
import random
from pathlib import Path

MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
USERS = ("root", "admin", "ubuntu", "azureuser", "git", "oracle", "test", "deploy", "postgres")
AGENTS = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:125.0) Gecko/20100101 Firefox/125.0",
    "curl/8.5.0",
    "python-requests/2.31.0",
    "Go-http-client/1.1",
    "kube-probe/1.29",
)
PATHS = ("/", "/index.html", "/api/v1/items", "/api/v1/items?id=42&sort=desc", "/login",
         "/static/app.js", "/static/style.css", "/healthz", "/wp-login.php", "/favicon.ico")  # fmt: skip


def _ip(rng: random.Random) -> str:
    return f"{rng.choice((20, 40, 52, 104, 198, 203))}.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"


def auth_log(path: Path, n_lines: int, seed: int = 1) -> None:
    """Write about ``n_lines`` lines of auth.log spanning a year-end (Dec -> Jan)."""
    rng = random.Random(seed)
    out: list[str] = []
    written, pid, sec = 0, 10_000, 0
    with path.open("w") as fh:
        while written < n_lines:
            sec += rng.randrange(1, 4)
            day, rest = divmod(sec, 86_400)
            month = (11 + day // 28) % 12  # starts in December, rolls into January
            stamp = f"{MONTHS[month]} {day % 28 + 1:2d} {rest // 3600:02d}:{rest % 3600 // 60:02d}:{rest % 60:02d}"
            host = "web1"
            kind = rng.random()
            pid += 1
            ip, port, user = _ip(rng), rng.randrange(1024, 65535), rng.choice(USERS)
            p = f"{stamp} {host} sshd[{pid}]: "
            if kind < 0.25:
                out += [
                    f"{p}Connection from {ip} port {port} on 10.0.0.4 port 22 rdomain \"\"",
                    f"{p}Accepted publickey for {user} from {ip} port {port} ssh2: ED25519 SHA256:Xy12Ab34Cd56Ef78Gh90",
                    f"{p}pam_unix(sshd:session): session opened for user {user}(uid=1000) by (uid=0)",
                    f"{stamp} {host} systemd-logind[411]: New session {pid} of user {user}.",
                    f"{p}Received disconnect from {ip} port {port}:11: disconnected by user",
                    f"{p}Disconnected from user {user} {ip} port {port}",
                    f"{p}pam_unix(sshd:session): session closed for user {user}",
                ]
            elif kind < 0.55:
                out += [
                    f"{p}Invalid user {user}x from {ip} port {port}",
                    f"{p}pam_unix(sshd:auth): check pass; user unknown",
                    f"{p}pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost={ip}",
                    f"{p}Failed password for invalid user {user}x from {ip} port {port} ssh2",
                    f"{p}message repeated 2 times: [ Failed password for invalid user {user}x from {ip} port {port} ssh2]",
                    f"{p}Connection closed by invalid user {user}x {ip} port {port} [preauth]",
                ]
            elif kind < 0.70:
                out += [
                    f"{p}Failed password for root from {ip} port {port} ssh2",
                    f"{p}error: maximum authentication attempts exceeded for root from {ip} port {port} ssh2 [preauth]",
                    f"{p}Disconnecting authenticating user root {ip} port {port}: Too many authentication failures [preauth]",
                ]
            elif kind < 0.74:
                out += [
                    f"{p}User {user} from {ip} not allowed because not listed in AllowUsers",
                    f"{p}Failed password for invalid user {user} from {ip} port {port} ssh2",
                    f"{p}Connection closed by invalid user {user} {ip} port {port} [preauth]",
                ]
            elif kind < 0.76:
                out += [
                    f"{stamp} {host} sshd-session[{pid}]: Connection from {ip} port {port} on 10.0.0.4 port 22 rdomain \"\"",
                    f"{stamp} {host} sshd[900]: Timeout before authentication for connection from {ip} to 10.0.0.4, pid = {pid}",
                ]
            elif kind < 0.77:
                out += [f"{p}refused connect from {ip} ({ip})"]
            elif kind < 0.80:
                out += [
                    f"{p}Did not receive identification string from {ip} port {port}",
                    f"{p}Unable to negotiate with {ip} port {port}: no matching key exchange method found. Their offer: diffie-hellman-group1-sha1 [preauth]",
                ]
            else:
                out += [
                    f"{stamp} {host} CRON[{pid}]: pam_unix(cron:session): session opened for user root(uid=0) by (uid=0)",
                    f"{stamp} {host} CRON[{pid}]: pam_unix(cron:session): session closed for user root",
                    f"{stamp} {host} sudo:   deploy : TTY=pts/0 ; PWD=/home/deploy ; USER=root ; COMMAND=/usr/bin/systemctl restart nginx",
                    f"{stamp} {host} systemd-logind[411]: Removed session {pid}.",
                ]
            if len(out) >= 100_000:
                take = out[: n_lines - written]
                fh.write("\n".join(take) + "\n")
                written += len(take)
                out = []
        if out and written < n_lines:
            take = out[: n_lines - written]
            fh.write("\n".join(take) + "\n")


def nginx_log(path: Path, n_lines: int, seed: int = 2) -> None:
    """Write ``n_lines`` nginx combined lines (about 190 bytes each)."""
    rng = random.Random(seed)
    ips = [_ip(rng) for _ in range(5000)] + ["2001:db8::7", "2001:db8:1::42"]
    statuses = ("200",) * 8 + ("301", "304", "404", "500")
    with path.open("w") as fh:
        batch: list[str] = []
        for i in range(n_lines):
            sec = i // 20
            stamp = f"{sec // 86400 % 28 + 1:02d}/Oct/2026:{sec // 3600 % 24:02d}:{sec // 60 % 60:02d}:{sec % 60:02d} +0000"
            batch.append(
                f'{rng.choice(ips)} - - [{stamp}] "GET {rng.choice(PATHS)} HTTP/1.1" '
                f'{rng.choice(statuses)} {rng.randrange(0, 50000)} "https://example.com/" '
                f'"{rng.choice(AGENTS)}"'
            )
            if len(batch) == 100_000:
                fh.write("\n".join(batch) + "\n")
                batch = []
        if batch:
            fh.write("\n".join(batch) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--auth-lines", type=int, default=2_000_000)
    parser.add_argument("--nginx-lines", type=int, default=5_000_000)
    parser.add_argument("--out", type=Path, default=Path("bench/out"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    auth_log(args.out / "auth.log", args.auth_lines)
    nginx_log(args.out / "access.log", args.nginx_lines)
    print(f"wrote {args.out / 'auth.log'} and {args.out / 'access.log'}")


if __name__ == "__main__":
    main()
