"""Real sshd, rsyslog and nginx in the lab's destination namespace, each with its own files.

Nothing here touches the system's services: every daemon runs in the foreground from a
config, pid file and logs under the lab's workdir, and is stopped by pid.

How sshd's log lines reach *our* rsyslog: sshd (like every syslog(3) caller) writes to the
fixed path ``/dev/log``, and a network namespace does not change the filesystem.  So sshd is
started in its own mount namespace (``unshare --mount --propagation private``: nothing done
there is seen by the host) where

* the real /dev is bind-mounted aside (``<workdir>/sshd/hostdev``) and /dev becomes a small
  tmpfs of symlinks to it, plus ``/dev/log`` -> our rsyslog's socket (a bind mount onto
  /dev/log would need that file to exist on the host, and creating it there would capture
  every other program's syslog);
* /run is a fresh tmpfs holding the privilege-separation directory /run/sshd;
* /etc/passwd and /etc/group are bind-mounted copies that add the test user, so no account
  is ever created on the host.

rsyslog itself listens only on that socket (``SysSock.Use="off"``: it never takes the host's
/dev/log) and writes the auth facility twice: traditional and RFC 3339 timestamps.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING, Final

from .lab import LabError, wait_for, which

if TYPE_CHECKING:
    from .lab import Lab

REQUIRED: Final = ("sshd", "ssh", "ssh-keygen", "rsyslogd", "nginx", "curl")
"""Commands the destination's services and the sources' clients need."""

SSH_USER: Final = "labuser"
SSH_UID: Final = 60123
"""An id no Debian package uses; the user exists only inside sshd's mount namespace."""

_SSHD_WRAPPER: Final = r"""
set -eu
mkdir -p "$EL_HOSTDEV"
mount --rbind /dev "$EL_HOSTDEV"
mount -t tmpfs -o mode=0755,size=256k el-dev /dev
for f in "$EL_HOSTDEV"/*; do ln -s "$f" "/dev/${f##*/}"; done
ln -sfn "$EL_LOGSOCK" /dev/log
mount -t tmpfs -o mode=0755,size=1m el-run /run
mkdir -m 0755 /run/sshd
mount --bind "$EL_PASSWD" /etc/passwd
mount --bind "$EL_GROUP" /etc/group
exec "$EL_SSHD" -D -f "$EL_SSHD_CONFIG"
"""

_RSYSLOG_CONF: Final = """\
global(workDirectory="{work}" localHostname="{hostname}" preserveFQDN="off")
module(load="imuxsock" SysSock.Use="off")
input(type="imuxsock" Socket="{sock}" CreatePath="on" RateLimit.Interval="0" UseSysTimeStamp="on")
auth,authpriv.* action(type="omfile" file="{auth_log}" template="RSYSLOG_TraditionalFileFormat")
auth,authpriv.* action(type="omfile" file="{auth_log_rfc3339}" template="RSYSLOG_FileFormat")
*.*;auth,authpriv.none action(type="omfile" file="{syslog}" template="RSYSLOG_FileFormat")
"""

_SSHD_CONFIG: Final = """\
Port 22
ListenAddress 0.0.0.0
HostKey {host_key}
PidFile {pid}
AuthorizedKeysFile .ssh/authorized_keys
AllowUsers {user}
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin no
UsePAM no
StrictModes yes
UseDNS no
PrintMotd no
X11Forwarding no
SyslogFacility AUTH
LogLevel VERBOSE
MaxStartups 200:30:400
"""

_NGINX_CONF: Final = """\
daemon off;
worker_processes 1;
user www-data;
pid {root}/nginx.pid;
error_log {error_log} info;
events {{ worker_connections 512; }}
http {{
    default_type text/html;
    server_tokens off;
    access_log {access_log} combined;
    client_body_temp_path {root}/tmp/body;
    proxy_temp_path {root}/tmp/proxy;
    fastcgi_temp_path {root}/tmp/fastcgi;
    uwsgi_temp_path {root}/tmp/uwsgi;
    scgi_temp_path {root}/tmp/scgi;
    server {{
        listen 80 default_server;
        server_name _;
        root {root}/www;
        location = /whoami {{ default_type text/plain; return 200 "$remote_addr $remote_port\\n"; }}
        location / {{ try_files $uri /index.html; }}
    }}
}}
"""


class Services:
    """sshd + rsyslog + nginx in ``lab.dest_ns``, and the client key and known_hosts for ssh."""

    def __init__(self, lab: Lab) -> None:
        self.lab = lab
        self.ns = lab.dest_ns
        self.dest_ip = lab.topology.dest_ip
        root = lab.workdir / "dst"
        self.root = root
        self.log_dir = root / "log"
        self.auth_log = self.log_dir / "auth.log"
        self.auth_log_rfc3339 = self.log_dir / "auth_rfc3339.log"
        self.syslog = self.log_dir / "syslog"
        self.access_log = self.log_dir / "access.log"
        self.nginx_error_log = self.log_dir / "nginx_error.log"
        self.log_socket = root / "rsyslog" / "log.sock"
        self.client_key = lab.workdir / "client" / "id_ed25519"
        self.known_hosts = lab.workdir / "client" / "known_hosts"
        self.ssh_user = SSH_USER
        self._procs: dict[str, subprocess.Popen[bytes]] = {}

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self) -> None:
        """Write configs and keys, start rsyslog, then sshd and nginx; wait until they listen.

        Raises:
            LabError: a daemon exited or did not come up in time (with its log's tail).
        """
        for d in (self.root, self.log_dir, self.client_key.parent):
            d.mkdir(parents=True, exist_ok=True)
            d.chmod(0o755)
        self._start_rsyslog()
        self._start_sshd()
        self._start_nginx()

    def stop(self) -> None:
        """Stop the daemons by pid (SIGTERM, then SIGKILL); rsyslog last, so it logs sshd's goodbyes."""
        for name in ("nginx", "sshd", "rsyslog"):
            proc = self._procs.pop(name, None)
            if proc is None:
                continue
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(5)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(5)

    @property
    def pids(self) -> dict[str, int]:
        """Process ids of the running daemons, by name (``rsyslog``, ``sshd``, ``nginx``)."""
        return {name: proc.pid for name, proc in self._procs.items()}

    # -- clients --------------------------------------------------------------------------------

    def ssh_argv(self, command: str = "true", connect_timeout: int = 5) -> list[str]:
        """An ssh command line for a source namespace: key login, no prompts, bounded, no config."""
        return [
            "ssh", "-F", "/dev/null", "-T",
            "-i", str(self.client_key), "-o", "IdentitiesOnly=yes",
            "-o", "BatchMode=yes", "-o", f"ConnectTimeout={connect_timeout}",
            "-o", "StrictHostKeyChecking=yes", "-o", f"UserKnownHostsFile={self.known_hosts}",
            "-o", "GlobalKnownHostsFile=/dev/null", "-o", "UpdateHostKeys=no", "-o", "LogLevel=ERROR",
            f"{self.ssh_user}@{self.dest_ip}", command,
        ]  # fmt: skip

    # -- daemons --------------------------------------------------------------------------------

    def _spawn(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        out = self.log_dir / f"{name}.stderr"
        with out.open("wb") as fh:
            proc = subprocess.Popen(
                ["ip", "netns", "exec", self.ns, *argv],
                stdin=subprocess.DEVNULL, stdout=fh, stderr=subprocess.STDOUT,
                env={**os.environ, **(env or {})},
            )  # fmt: skip
        self._procs[name] = proc
        return proc

    def _await(self, name: str, ready: object, what: str, timeout: float = 10) -> None:
        proc = self._procs[name]
        ok = wait_for(lambda: proc.poll() is None and ready(), timeout)  # type: ignore[operator]
        if not ok:
            tail = (self.log_dir / f"{name}.stderr").read_text(errors="replace")[-800:]
            state = f"exited {proc.returncode}" if proc.poll() is not None else f"no {what} after {timeout}s"
            raise LabError(f"{name} in {self.ns}: {state}: {tail.strip()}")

    def _listening(self, port: int) -> bool:
        done = subprocess.run(
            ["ip", "netns", "exec", self.ns, "ss", "-Hltn", f"sport = :{port}"],
            capture_output=True, text=True, timeout=5, check=False,
        )  # fmt: skip
        return bool(done.stdout.strip())

    def _start_rsyslog(self) -> None:
        work = self.root / "rsyslog"
        work.mkdir(mode=0o755)
        conf = work / "rsyslog.conf"
        conf.write_text(
            _RSYSLOG_CONF.format(
                work=work, hostname=self.lab.hostname, sock=self.log_socket, auth_log=self.auth_log,
                auth_log_rfc3339=self.auth_log_rfc3339, syslog=self.syslog,
            )
        )  # fmt: skip
        self._spawn("rsyslog", [_cmd("rsyslogd"), "-n", "-f", str(conf), "-i", str(work / "rsyslogd.pid")])
        self._await("rsyslog", self.log_socket.exists, "socket")
        # sshd's post-authentication child logs as the test user.
        self.log_socket.chmod(0o666)

    def _start_sshd(self) -> None:
        d = self.root / "sshd"
        d.mkdir(mode=0o755)
        host_key = d / "ssh_host_ed25519_key"
        _keygen(host_key, "lab host key")
        _keygen(self.client_key, "lab client key")
        # Host key pinned for the destination address: StrictHostKeyChecking stays on.
        pub = host_key.with_suffix(".pub").read_text().split()
        self.known_hosts.write_text(f"{self.dest_ip} {pub[0]} {pub[1]}\n")
        # The test user, visible only in sshd's mount namespace (see the module docstring).
        home = self.root / "home" / SSH_USER
        (home / ".ssh").mkdir(parents=True)
        (self.root / "home").chmod(0o755)
        shutil.copy(self.client_key.with_suffix(".pub"), home / ".ssh" / "authorized_keys")
        for path, mode in ((home, 0o755), (home / ".ssh", 0o700), (home / ".ssh" / "authorized_keys", 0o600)):
            os.chown(path, SSH_UID, SSH_UID)
            path.chmod(mode)
        etc = d / "etc"
        etc.mkdir(mode=0o755)
        passwd, group = etc / "passwd", etc / "group"
        passwd.write_text(Path("/etc/passwd").read_text() + f"{SSH_USER}:x:{SSH_UID}:{SSH_UID}:lab user:{home}:/bin/sh\n")
        group.write_text(Path("/etc/group").read_text() + f"{SSH_USER}:x:{SSH_UID}:\n")
        passwd.chmod(0o644)
        group.chmod(0o644)
        conf = d / "sshd_config"
        conf.write_text(_SSHD_CONFIG.format(host_key=host_key, pid=d / "sshd.pid", user=SSH_USER))
        sshd = _cmd("sshd")
        test = subprocess.run([sshd, "-t", "-f", str(conf)], capture_output=True, text=True, timeout=10, check=False)
        # `sshd -t` outside the wrapper only complains about /run/sshd, which the wrapper makes.
        if test.returncode != 0 and "privilege separation directory" not in test.stderr:
            raise LabError(f"sshd_config rejected: {test.stderr.strip()}")
        env = {
            "EL_HOSTDEV": str(d / "hostdev"), "EL_LOGSOCK": str(self.log_socket),
            "EL_PASSWD": str(passwd), "EL_GROUP": str(group), "EL_SSHD": sshd,
            "EL_SSHD_CONFIG": str(conf),
        }  # fmt: skip
        self._spawn("sshd", ["unshare", "--mount", "--propagation", "private", "sh", "-c", _SSHD_WRAPPER], env)
        self._await("sshd", lambda: self._listening(22), "listener on port 22")
        # "Server listening on 0.0.0.0 port 22." through rsyslog proves the /dev/log path works.
        if not wait_for(lambda: self.auth_log.exists() and "Server listening" in self.auth_log.read_text(), 5):
            raise LabError(f"sshd runs but nothing reached {self.auth_log} through rsyslog")

    def _start_nginx(self) -> None:
        d = self.root / "nginx"
        for sub in (d, d / "www", d / "tmp"):
            sub.mkdir(mode=0o755)
        (d / "www" / "index.html").write_text("<!doctype html><title>lab web app</title><p>hello from the lab\n")
        (d / "www" / "index.html").chmod(0o644)
        conf = d / "nginx.conf"
        conf.write_text(_NGINX_CONF.format(root=d, error_log=self.nginx_error_log, access_log=self.access_log))
        self._spawn("nginx", [_cmd("nginx"), "-e", str(self.nginx_error_log), "-p", str(d), "-c", str(conf)])
        self._await("nginx", lambda: self._listening(80), "listener on port 80")


def _cmd(name: str) -> str:
    path = which(name)
    if path is None:
        raise LabError(f"{name} not found (make sysdeps)")
    return path


def _keygen(path: Path, comment: str) -> None:
    subprocess.run(
        [_cmd("ssh-keygen"), "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)],
        check=True, capture_output=True, timeout=20,
    )  # fmt: skip


def unavailable() -> str | None:
    """Why the services cannot run here (None when they can)."""
    missing = [c for c in REQUIRED if which(c) is None]
    return f"the lab's services need: {', '.join(missing)} (make sysdeps)" if missing else None


__all__ = ["REQUIRED", "SSH_USER", "Services", "unavailable"]
