"""Real, federating Synapse homeservers on loopback, for the test suite, the benchmark and ``ako dev``.

Self-contained: depends on nothing else in the project (only on the optional
``homeserver`` extra: matrix-synapse, signedjson; plus ``cryptography``, which
Synapse itself pulls in; ``openssl`` on PATH is used as a fallback for the
certificate).

Each server lives in its own state directory::

    <state_dir>/
        ako-homeserver.json   ports + shared secret (the source of truth on restart)
        homeserver.yaml       regenerated on every start from the json above
        log.config
        homeserver.log        Synapse's own log (WARNING and up by default)
        synapse.out           the process's stdout/stderr (start-up failures land here)
        homeserver.db         SQLite database
        signing.key
        media_store/
        ako-homeserver.pid

The server name is ``localhost:<fed_port>``; federation is TLS on that port (so no
.well-known / SRV look-up happens), the client API plain HTTP on
``127.0.0.1:<client_port>``. All servers of one ``start_homeservers`` call share one
self-signed certificate in ``<base_dir>/tls``.

Set ``AKO_HS_LOG_LEVEL=INFO`` (or DEBUG) in the environment to make Synapse log more.
"""

from __future__ import annotations

import atexit
import hashlib
import hmac
import json
import os
import secrets
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

__all__ = [
    "Homeserver",
    "HomeserverError",
    "start_homeservers",
    "stop_homeservers",
    "dev_cluster",
]

READY_TIMEOUT = 60.0
STOP_TIMEOUT = 10.0
STATE_FILE = "ako-homeserver.json"
PID_FILE = "ako-homeserver.pid"
CONFIG_FILE = "homeserver.yaml"
LOG_CONFIG_FILE = "log.config"
LOG_FILE = "homeserver.log"
OUT_FILE = "synapse.out"

_LIMIT = {"per_second": 10000, "burst_count": 10000}


class HomeserverError(RuntimeError):
    """A homeserver could not be started, or an admin/API request to it failed."""


# Servers started by this process and not yet stopped; stopped at interpreter exit.
_live: set["Homeserver"] = set()
_live_lock = threading.Lock()


def _stop_leftovers() -> None:
    with _live_lock:
        servers = list(_live)
    for hs in servers:
        try:
            hs.stop()
        except Exception:  # pragma: no cover - best effort at exit
            pass


atexit.register(_stop_leftovers)


@dataclass(eq=False)
class Homeserver:
    server_name: str  # "localhost:<fed_port>"
    client_url: str  # "http://127.0.0.1:<client_port>"
    state_dir: Path
    shared_secret: str
    process: subprocess.Popen | None = None
    client_port: int = 0
    fed_port: int = 0
    log: Callable[[str], None] = field(default=print, repr=False)
    _admin_token: str | None = field(default=None, repr=False)

    # ------------------------------------------------------------------ paths
    @property
    def name(self) -> str:
        return self.state_dir.name

    @property
    def config_path(self) -> Path:
        return self.state_dir / CONFIG_FILE

    @property
    def log_path(self) -> Path:
        return self.state_dir / LOG_FILE

    @property
    def out_path(self) -> Path:
        return self.state_dir / OUT_FILE

    @property
    def federation_url(self) -> str:
        return f"https://127.0.0.1:{self.fed_port}"

    # ------------------------------------------------------------------ users
    def user_id(self, localpart: str) -> str:
        return f"@{localpart}:{self.server_name}"

    def register(self, localpart: str, password: str, admin: bool = False) -> tuple[str, str]:
        """Register a user with the shared-secret admin API; returns (user_id, access_token).

        If the user already exists (e.g. ``ako dev`` restarted on its old state), log in
        with the password instead (a new device / token each time).
        """
        url = f"{self.client_url}/_synapse/admin/v1/register"
        status, body = _http_json("GET", url)
        if status != 200 or "nonce" not in body:
            raise HomeserverError(f"{self.name}: GET {url} -> {status} {body}")
        nonce = body["nonce"]
        mac = hmac.new(self.shared_secret.encode(), digestmod=hashlib.sha1)
        mac.update(nonce.encode())
        mac.update(b"\x00")
        mac.update(localpart.encode())
        mac.update(b"\x00")
        mac.update(password.encode())
        mac.update(b"\x00")
        mac.update(b"admin" if admin else b"notadmin")
        status, body = _http_json(
            "POST",
            url,
            {
                "nonce": nonce,
                "username": localpart,
                "password": password,
                "admin": admin,
                "mac": mac.hexdigest(),
            },
        )
        if status == 200:
            return body["user_id"], body["access_token"]
        if status == 400 and body.get("errcode") == "M_USER_IN_USE":
            return self.login(localpart, password)
        raise HomeserverError(f"{self.name}: registering {localpart!r} -> {status} {body}")

    def message_rate(self, user_id: str, per_second: float | None, burst_count: int = 0) -> None:
        """Give one user its own message rate limit (Synapse's admin API ``override_ratelimit``);
        ``per_second=None`` removes it, so the server's own ``rc_message`` applies again."""
        if self._admin_token is None:
            _, self._admin_token = self.register("harness-admin", "admin-" + self.shared_secret[:16], admin=True)
        url = f"{self.client_url}/_synapse/admin/v1/users/{urllib.parse.quote(user_id)}/override_ratelimit"
        if per_second is None:
            status, body = _http_json("DELETE", url, token=self._admin_token)
        else:
            status, body = _http_json("POST", url, {"messages_per_second": per_second, "burst_count": burst_count}, token=self._admin_token)
        if status != 200:
            raise HomeserverError(f"{self.name}: rate limit override for {user_id} -> {status} {body}")

    def login(self, localpart: str, password: str) -> tuple[str, str]:
        """Password login; returns (user_id, access_token)."""
        status, body = _http_json(
            "POST",
            f"{self.client_url}/_matrix/client/v3/login",
            {
                "type": "m.login.password",
                "identifier": {"type": "m.id.user", "user": localpart},
                "password": password,
                "initial_device_display_name": "ako harness",
            },
        )
        if status != 200:
            raise HomeserverError(f"{self.name}: login of {localpart!r} -> {status} {body}")
        return body["user_id"], body["access_token"]

    # ------------------------------------------------------------- lifecycle
    def is_running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self) -> None:
        """(Re)start Synapse on the existing state dir and wait until it is ready."""
        if self.is_running():
            return
        self._launch()
        _wait_ready([self], READY_TIMEOUT)

    def stop(self) -> None:
        """SIGTERM the process we started (by PID), wait, SIGKILL after ~10 s."""
        proc = self.process
        if proc is None:
            return
        try:
            if proc.poll() is None:
                try:
                    proc.send_signal(signal.SIGTERM)
                except ProcessLookupError:
                    pass
                try:
                    proc.wait(timeout=STOP_TIMEOUT)
                except subprocess.TimeoutExpired:
                    self.log(f"homeserver {self.name}: no exit {STOP_TIMEOUT:.0f}s after SIGTERM, killing")
                    proc.kill()
                    proc.wait()
        finally:
            with _live_lock:
                _live.discard(self)
            try:
                (self.state_dir / PID_FILE).unlink()
            except FileNotFoundError:
                pass

    def log_tail(self, lines: int = 40) -> str:
        parts = []
        for path in (self.out_path, self.log_path):
            tail = _tail(path, lines)
            if tail:
                parts.append(f"--- {path} ---\n{tail}")
        return "\n".join(parts) or "(no log output)"

    def _launch(self) -> None:
        for port in (self.client_port, self.fed_port):
            if not _port_free(port):
                raise HomeserverError(
                    f"homeserver {self.name}: port {port} is already in use"
                    f"{_old_pid_hint(self.state_dir)}"
                )
        out = open(self.out_path, "ab")
        try:
            out.write(f"\n==== start {time.strftime('%Y-%m-%d %H:%M:%S')} ====\n".encode())
            out.flush()
            on_main_thread = threading.current_thread() is threading.main_thread()
            preexec = _die_with_parent if on_main_thread and _prctl is not None else None
            self.process = subprocess.Popen(
                [sys.executable, "-m", "synapse.app.homeserver", "-c", str(self.config_path)],
                cwd=self.state_dir,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                preexec_fn=preexec,
            )
        finally:
            out.close()
        (self.state_dir / PID_FILE).write_text(f"{self.process.pid}\n")
        with _live_lock:
            _live.add(self)

    def _probe(self) -> bool:
        """True once both the client API and the federation (TLS) listener answer."""
        status, _ = _http_json("GET", f"{self.client_url}/_matrix/client/versions", timeout=2)
        if status != 200:
            return False
        status, _ = _http_json("GET", f"{self.federation_url}/_matrix/key/v2/server", timeout=2)
        return status == 200


# ---------------------------------------------------------------------- public API


def start_homeservers(
    base_dir: Path, count: int, *, log: Callable[[str], None] = print, message_limits: bool = False
) -> list[Homeserver]:
    """Start ``count`` federating homeservers under ``base_dir/hs-a``, ``hs-b``, ...

    A state dir that already holds a server (``ako-homeserver.json``) is restarted with
    its old ports, secret and database, so accounts survive. Every rate limit is relaxed, but
    with ``message_limits`` the servers keep Synapse's default ``rc_message``. All servers are launched
    first and then polled together; returns once every one of them answers on both
    listeners (or raises HomeserverError with the tail of the failing server's log,
    after stopping whatever it started).
    """
    if not 1 <= count <= 26:
        raise ValueError("count must be between 1 and 26")
    base_dir = Path(base_dir).resolve()
    base_dir.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    cert, key = _ensure_certificate(base_dir / "tls")
    dirs = [base_dir / f"hs-{chr(ord('a') + i)}" for i in range(count)]
    servers: list[Homeserver] = []
    try:
        # fresh servers get new ports; pick them all while holding the sockets so that
        # two servers of the same run cannot be handed the same port.
        fresh = [d for d in dirs if not (d / STATE_FILE).exists()]
        ports = iter(free_ports(2 * len(fresh)))
        for d in dirs:
            if d in fresh:
                hs = create_state(d, next(ports), next(ports), log)
            else:
                hs = load_state(d, log)
            _write_config(hs, cert, key, message_limits=message_limits)
            servers.append(hs)

        for hs in servers:
            hs._launch()
        _wait_ready(servers, READY_TIMEOUT)
    except BaseException:
        stop_homeservers(servers)
        raise
    log(
        f"{count} homeserver(s) ready in {time.monotonic() - t0:.1f}s: "
        + ", ".join(f"{hs.server_name} (client {hs.client_url})" for hs in servers)
    )
    return servers


def stop_homeservers(servers: Iterable[Homeserver]) -> None:
    """Stop servers concurrently (SIGTERM by PID, SIGKILL after ~10 s)."""
    servers = list(servers)
    for hs in servers:
        if hs.is_running():
            try:
                hs.process.send_signal(signal.SIGTERM)  # type: ignore[union-attr]
            except ProcessLookupError:
                pass
    for hs in servers:
        hs.stop()


def dev_cluster(state_dir: Path, log: Callable[[str], None] = print) -> list[Homeserver]:
    """Two federating servers for ``ako dev`` under ``state_dir/hs-a`` and ``state_dir/hs-b``.

    Re-running on the same ``state_dir`` restarts them on their old ports and databases.
    """
    return start_homeservers(Path(state_dir), 2, log=log)


# ---------------------------------------------------------------------- state


def create_state(state_dir: Path, client_port: int, fed_port: int, log, host: str = "localhost") -> Homeserver:
    """A new server's state: its name (``<host>:<fed_port>``), ports and secret, and a signing key;
    :func:`start_homeservers` starts it from there."""
    state_dir.mkdir(parents=True, exist_ok=True)
    if (state_dir / "homeserver.db").exists():
        raise HomeserverError(
            f"{state_dir} holds a database but no {STATE_FILE}; refusing to reuse it "
            "with a new server name (delete the folder to start afresh)"
        )
    state = {
        "server_name": f"{host}:{fed_port}",
        "client_port": client_port,
        "fed_port": fed_port,
        "shared_secret": secrets.token_urlsafe(24),
    }
    write_signing_key(state_dir / "signing.key")
    (state_dir / STATE_FILE).write_text(json.dumps(state, indent=2) + "\n")
    return _from_state(state_dir, state, log)


def load_state(state_dir: Path, log) -> Homeserver:
    """The server whose state is in ``state_dir`` (not started)."""
    state = json.loads((state_dir / STATE_FILE).read_text())
    if not (state_dir / "signing.key").exists():
        write_signing_key(state_dir / "signing.key")
    return _from_state(state_dir, state, log)


def _from_state(state_dir: Path, state: dict, log) -> Homeserver:
    return Homeserver(
        server_name=state["server_name"],
        client_url=f"http://127.0.0.1:{state['client_port']}",
        state_dir=state_dir,
        shared_secret=state["shared_secret"],
        process=None,
        client_port=int(state["client_port"]),
        fed_port=int(state["fed_port"]),
        log=log,
    )


def write_signing_key(path: Path) -> None:
    from signedjson.key import generate_signing_key, write_signing_keys

    key = generate_signing_key("a_" + secrets.token_hex(2))
    with open(path, "w") as f:
        write_signing_keys(f, [key])


def _write_config(hs: Homeserver, cert: Path, key: Path, message_limits: bool = False) -> None:
    d = hs.state_dir
    level = os.environ.get("AKO_HS_LOG_LEVEL", "WARNING").upper()
    log_config = {
        "version": 1,
        "formatters": {
            "precise": {
                "format": "%(asctime)s - %(name)s - %(lineno)d - %(levelname)s - %(request)s - %(message)s"
            }
        },
        "handlers": {
            "file": {
                "class": "logging.FileHandler",
                "formatter": "precise",
                "filename": str(hs.log_path),
                "encoding": "utf8",
            }
        },
        "loggers": {"synapse.storage.SQL": {"level": "WARNING"}},
        "root": {"level": level, "handlers": ["file"]},
        "disable_existing_loggers": False,
    }
    config = {
        "server_name": hs.server_name,
        "public_baseurl": f"{hs.client_url}/",
        "pid_file": str(d / "homeserver.pid"),
        "listeners": [
            {
                "port": hs.client_port,
                "bind_addresses": ["127.0.0.1"],
                "type": "http",
                "tls": False,
                "x_forwarded": False,
                "resources": [{"names": ["client"], "compress": False}],
            },
            {
                "port": hs.fed_port,
                "bind_addresses": ["127.0.0.1"],
                "type": "http",
                "tls": True,
                "resources": [{"names": ["federation"], "compress": False}],
            },
        ],
        "tls_certificate_path": str(cert),
        "tls_private_key_path": str(key),
        "federation_verify_certificates": False,
        "ip_range_whitelist": ["127.0.0.0/8", "::1/128"],
        "trusted_key_servers": [],
        "suppress_key_server_warning": True,
        "report_stats": False,
        "database": {"name": "sqlite3", "args": {"database": str(d / "homeserver.db")}},
        "media_store_path": str(d / "media_store"),
        "signing_key_path": str(d / "signing.key"),
        "log_config": str(d / LOG_CONFIG_FILE),
        "registration_shared_secret": hs.shared_secret,
        "enable_registration": False,
        "bcrypt_rounds": 4,
        "enable_authenticated_media": True,
        "max_upload_size": "50M",
        "presence": {"enabled": False},
        "room_list_publication_rules": [{"action": "allow"}],
        # a peer that was down (e.g. restarted in a test or by `ako dev`) is retried
        # within seconds rather than backed off for minutes.
        "federation": {
            "destination_min_retry_interval": "1s",
            "destination_retry_multiplier": 1.5,
            "destination_max_retry_interval": "10s",
        },
        # test-only: effectively no rate limiting (there is no global off switch)
        "rc_message": _LIMIT,
        "rc_registration": _LIMIT,
        "rc_login": {"address": _LIMIT, "account": _LIMIT, "failed_attempts": _LIMIT},
        "rc_joins": {"local": _LIMIT, "remote": _LIMIT},
        "rc_joins_per_room": _LIMIT,
        "rc_invites": {"per_room": _LIMIT, "per_user": _LIMIT, "per_issuer": _LIMIT},
        "rc_room_creation": _LIMIT,
        "rc_media_create": _LIMIT,
        "rc_presence": {"per_user": _LIMIT},
        "rc_profile": _LIMIT,
        "rc_user_directory": _LIMIT,
        "rc_delayed_event_mgmt": _LIMIT,
        "rc_reports": _LIMIT,
        "rc_admin_redaction": _LIMIT,
        "rc_3pid_validation": _LIMIT,
        "rc_federation": {
            "window_size": 1000,
            "sleep_limit": 10000,
            "sleep_delay": 0,
            "reject_limit": 10000,
            "concurrent": 10000,
        },
    }
    if message_limits:  # Synapse's own defaults for sending events (0.2/s, bursts of 10)
        del config["rc_message"]
    header = (
        "# Generated by devtools/homeserver.py on every start from ako-homeserver.json; "
        "edits are overwritten.\n# (JSON is valid YAML.)\n"
    )
    (d / LOG_CONFIG_FILE).write_text(json.dumps(log_config, indent=2) + "\n")
    (d / CONFIG_FILE).write_text(header + json.dumps(config, indent=2) + "\n")


def _ensure_certificate(tls_dir: Path) -> tuple[Path, Path]:
    """One self-signed cert (SAN DNS:localhost, IP:127.0.0.1) shared by all servers."""
    cert, key = tls_dir / "localhost.crt", tls_dir / "localhost.key"
    if cert.exists() and key.exists():
        return cert, key
    tls_dir.mkdir(parents=True, exist_ok=True)
    try:
        _certificate_with_cryptography(cert, key)
    except ImportError:
        subprocess.run(
            [
                "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
                "-keyout", str(key), "-out", str(cert), "-days", "3650",
                "-subj", "/CN=localhost",
                "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
            ],
            check=True,
            capture_output=True,
        )
    return cert, key


def _certificate_with_cryptography(cert_path: Path, key_path: Path) -> None:
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=3650))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )
    os.chmod(key_path, 0o600)
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


# ---------------------------------------------------------------------- readiness


def _wait_ready(servers: list[Homeserver], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    pending = list(servers)
    while pending:
        for hs in list(pending):
            code = hs.process.poll() if hs.process else None
            if hs.process is None or code is not None:
                raise HomeserverError(
                    f"homeserver {hs.name} ({hs.server_name}) exited with code {code} "
                    f"during start-up\n{hs.log_tail()}"
                )
            if hs._probe():
                pending.remove(hs)
        if not pending:
            return
        if time.monotonic() > deadline:
            names = ", ".join(hs.name for hs in pending)
            tails = "\n".join(hs.log_tail() for hs in pending)
            raise HomeserverError(f"homeservers not ready after {timeout:.0f}s: {names}\n{tails}")
        time.sleep(0.1)


_insecure_ssl = ssl.create_default_context()
_insecure_ssl.check_hostname = False
_insecure_ssl.verify_mode = ssl.CERT_NONE


def _http_json(method: str, url: str, body: dict | None = None, timeout: float = 10, token: str | None = None) -> tuple[int, dict]:
    """Tiny JSON HTTP client. Returns (status, parsed body); status 0 = no connection."""
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method)
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=timeout, context=_insecure_ssl if url.startswith("https") else None) as resp:
            raw = resp.read()
            status = resp.status
    except urllib.error.HTTPError as e:
        raw = e.read()
        status = e.code
    except (OSError, ssl.SSLError):  # refused, reset, timeout: not up (yet)
        return 0, {}
    try:
        parsed = json.loads(raw) if raw else {}
    except ValueError:
        parsed = {"raw": raw[:500].decode(errors="replace")}
    return status, parsed if isinstance(parsed, dict) else {"value": parsed}


# ---------------------------------------------------------------------- helpers


def free_ports(n: int) -> list[int]:
    """``n`` loopback ports nothing listens on now, all different."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _old_pid_hint(state_dir: Path) -> str:
    try:
        pid = int((state_dir / PID_FILE).read_text().strip())
    except (OSError, ValueError):
        return ""
    try:
        os.kill(pid, 0)
    except OSError:
        return ""
    return f" (a previous Synapse from {state_dir}, PID {pid}, may still be running)"


def _tail(path: Path, lines: int) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 64 * 1024))
            text = f.read().decode(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def _load_prctl():
    """libc's prctl, looked up in the parent: the child must not import or lock anything."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        import ctypes

        return ctypes.CDLL(None, use_errno=True).prctl
    except Exception:
        return None


_prctl = _load_prctl()


def _die_with_parent() -> None:  # pragma: no cover - runs in the child, between fork and exec
    """Linux: have the kernel SIGTERM Synapse if the process that started it dies, so a
    crashed/killed test run or `ako dev` leaves no orphan server behind. (Only used when
    launching from the main thread: the signal fires when the launching *thread* exits.)"""
    if _prctl is not None:
        _prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
