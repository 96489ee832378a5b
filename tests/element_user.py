"""A test-side user whose client behaves as Element does today.

Each ``ElementUser`` drives one Node process running ``tests/element/client.mjs``: matrix-js-sdk
(the SDK under Element Web) with its Rust crypto, the user's own cross-signing identity set up at
login as Element does, and Element's device isolation mode, ``OnlySignedDevicesIsolationMode``
(MSC4153: room keys only for devices cross-signed by their owner; events from any other device
fail to decrypt). ``isolation="all_devices"`` gives the older mode, where such events decrypt with
a red shield.

The Node packages are installed by ``ensure_node_modules()`` (``npm ci`` from the committed lock
file, once, skipped when ``node_modules`` already matches it); the ``element_client`` fixture
calls it. The process's stderr (the SDK's log) goes to a file named in every error.
"""

from __future__ import annotations

import asyncio
import base64
import fcntl
import hashlib
import itertools
import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import pytest

from devtools.homeserver import Homeserver
from tests.matrix_user import register

ELEMENT_DIR = Path(__file__).resolve().parent / "element"
CLIENT_SCRIPT = ELEMENT_DIR / "client.mjs"
LOCK_FILE = ELEMENT_DIR / "package-lock.json"
STAMP = ELEMENT_DIR / "node_modules" / ".ako-installed-lock.sha256"
MIN_NODE = 20
LOG_DIR = Path(tempfile.gettempdir()) / "ako-element-logs"

_installed = False


class ElementError(Exception):
    """The Element-mode client answered a request with an error."""

    def __init__(self, what: str, error: dict, log_path: Path):
        self.error = error
        self.errcode = error.get("errcode")
        self.http_status = error.get("http_status")
        super().__init__(f"{what}: {error.get('message')} (client log: {log_path})")


def _lock_digest() -> str:
    return hashlib.sha256(LOCK_FILE.read_bytes()).hexdigest()


def ensure_node_modules() -> None:
    """Install the harness's Node packages with ``npm ci`` unless ``node_modules`` already
    matches ``package-lock.json``. Fails (not skips) with a sentence when node or npm is missing:
    the Element-mode tests are the proof that Ako works with Element."""
    global _installed
    if _installed:
        return
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        missing = [n for n, p in (("node", node), ("npm", npm)) if p is None]
        pytest.fail(
            f"The Element-mode tests need Node.js {MIN_NODE} or newer with npm, and {' and '.join(missing)} "
            f"{'is' if len(missing) == 1 else 'are'} not on PATH: "
            f"install Node.js (e.g. `apt-get install nodejs npm`) and run the tests again.",
            pytrace=False,
        )
    version = subprocess.run([node, "--version"], capture_output=True, text=True).stdout.strip()
    try:
        major = int(version.lstrip("v").split(".")[0])
    except ValueError:
        major = 0
    if major < MIN_NODE:
        pytest.fail(
            f"The Element-mode tests need Node.js {MIN_NODE} or newer; `node --version` says {version or 'nothing'}.",
            pytrace=False,
        )
    digest = _lock_digest()
    lock_path = Path(tempfile.gettempdir()) / f"ako-element-npm-{hashlib.sha256(str(ELEMENT_DIR).encode()).hexdigest()[:12]}.lock"
    with open(lock_path, "w") as lock:  # two pytest-xdist workers must not run npm ci at once
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            if STAMP.exists() and STAMP.read_text().strip() == digest:
                _installed = True
                return
            done = subprocess.run(
                [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
                cwd=ELEMENT_DIR,
                capture_output=True,
                text=True,
                timeout=600,
            )
            if done.returncode != 0:
                pytest.fail(
                    f"`npm ci` in {ELEMENT_DIR} failed (exit {done.returncode}), so the Element-mode client "
                    f"cannot run:\n{done.stderr[-3000:]}",
                    pytrace=False,
                )
            STAMP.write_text(digest + "\n")
            _installed = True
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


@pytest.fixture(scope="session")
def element_client() -> Path:
    """The Element-mode client installed and ready to run; its script path."""
    ensure_node_modules()
    return CLIENT_SCRIPT


class ElementUser:
    """One user on one homeserver, logged in on a fresh device of an Element-mode client."""

    user_id: str
    device_id: str
    master_key: str | None

    def __init__(self, hs: Homeserver, process: asyncio.subprocess.Process, log_path: Path, log_file):
        self.hs = hs
        self.process = process
        self.log_path = log_path
        self._log_file = log_file
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future] = {}
        self._reader = asyncio.create_task(self._read(), name=f"element reader {log_path.name}")
        self._ready = asyncio.get_running_loop().create_future()
        self._closed = False
        self.user_id = self.device_id = ""
        self.master_key = None
        self.login_info: dict = {}  # what login answered: ids, master key, own device signed, isolation mode

    # ------------------------------------------------------------------ lifecycle
    @classmethod
    async def create(
        cls,
        hs: Homeserver,
        localpart: str,
        *,
        isolation: str = "only_signed",
        log_dir: Path | None = None,
        cross_sign: bool = True,
    ) -> "ElementUser":
        """Register ``localpart`` on ``hs`` (or log in if it exists), then log in with its password
        (:func:`tests.matrix_user.register`'s, the same for every client of the user) on a fresh
        device of a new client process, which sets up the user's cross-signing identity and
        syncs. ``isolation``: ``"only_signed"`` (Element today) or ``"all_devices"``.
        ``cross_sign=False``: a new login of a user who already has an identity, unsigned until a
        signed device of hers signs it (:meth:`cross_sign_device`)."""
        ensure_node_modules()
        _, _, password = await register(hs, localpart)
        log_dir = Path(log_dir or LOG_DIR)
        log_dir.mkdir(parents=True, exist_ok=True)
        log_path = log_dir / f"{localpart}-{os.getpid()}.log"
        log_file = open(log_path, "ab")
        process = await asyncio.create_subprocess_exec(
            shutil.which("node") or "node",
            str(CLIENT_SCRIPT),
            cwd=ELEMENT_DIR,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=log_file,
            limit=64 * 1024 * 1024,
        )
        self = cls(hs, process, log_path, log_file)
        try:
            await asyncio.wait_for(asyncio.shield(self._ready), 60)
            info = await self.call(
                "login",
                {"baseUrl": hs.client_url, "user": localpart, "password": password, "isolation": isolation, "crossSign": cross_sign},
                timeout=120,
            )
        except BaseException:
            await self.close()
            raise
        self.user_id, self.device_id, self.master_key = info["user_id"], info["device_id"], info["master_key"]
        self.login_info = info
        return self

    async def cross_sign_device(self, device_id: str) -> None:
        """Sign another device of this user with this device's identity, as Element does at the end
        of verifying a new login from this one."""
        await self.call("cross_sign_device", {"device_id": device_id}, timeout=60)

    async def close(self) -> None:
        """Stop the client and its process (killed if it does not leave within 10 s)."""
        if self._closed:
            return
        self._closed = True
        if self.process.returncode is None:
            try:
                await asyncio.wait_for(self._call_raw("stop", {}), 10)
            except (Exception, asyncio.TimeoutError):
                pass
            try:
                await asyncio.wait_for(self.process.wait(), 10)
            except asyncio.TimeoutError:
                self.process.kill()
                await self.process.wait()
        self._reader.cancel()
        try:
            await self._reader
        except (asyncio.CancelledError, Exception):
            pass
        self._log_file.close()

    async def __aenter__(self) -> "ElementUser":
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()

    # ------------------------------------------------------------------ protocol
    async def _read(self) -> None:
        assert self.process.stdout is not None
        try:
            while True:
                line = await self.process.stdout.readline()
                if not line:
                    break
                try:
                    msg = json.loads(line)
                except ValueError:
                    continue
                if msg.get("ready") and not self._ready.done():
                    self._ready.set_result(True)
                    continue
                fut = self._pending.pop(msg.get("id"), None)
                if fut is not None and not fut.done():
                    fut.set_result(msg)
        finally:
            gone = RuntimeError(f"the Element-mode client process ended (client log: {self.log_path})\n{self.log_tail()}")
            if not self._ready.done():
                self._ready.set_exception(gone)
            for fut in self._pending.values():
                if not fut.done():
                    fut.set_exception(gone)
            self._pending.clear()

    async def _call_raw(self, method: str, params: dict) -> dict:
        if self.process.returncode is not None:
            raise RuntimeError(f"the Element-mode client process has ended (client log: {self.log_path})")
        request_id = next(self._ids)
        fut = asyncio.get_running_loop().create_future()
        self._pending[request_id] = fut
        assert self.process.stdin is not None
        self.process.stdin.write((json.dumps({"id": request_id, "method": method, "params": params}) + "\n").encode())
        await self.process.stdin.drain()
        return await fut

    async def call(self, method: str, params: dict | None = None, *, timeout: float = 60) -> Any:
        """Call one method of the client; its result, or ElementError (TimeoutError when the
        client does not answer within ``timeout`` s)."""
        try:
            msg = await asyncio.wait_for(self._call_raw(method, params or {}), timeout)
        except asyncio.TimeoutError:
            raise TimeoutError(f"{self.user_id or 'client'}: {method} got no answer within {timeout}s (client log: {self.log_path})") from None
        if "error" in msg:
            raise ElementError(f"{self.user_id or 'client'}: {method}", msg["error"], self.log_path)
        return msg.get("result")

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return ""

    # ------------------------------------------------------------------ rooms
    async def whoami(self) -> dict:
        """``user_id``, ``device_id``, ``master_key`` and ``cross_signing_ready`` of this client."""
        return await self.call("whoami")

    async def dm(self, other_user_id: str, *, encrypted: bool = True, wait_join: bool = True, name: str | None = None) -> str:
        """A direct message with ``other_user_id`` as Element makes it (encrypted, ``is_direct``,
        recorded in ``m.direct``); by default once the other has joined."""
        room = (await self.call("create_dm", {"user_id": other_user_id, "encrypted": encrypted, "name": name}))["room_id"]
        if wait_join:
            await self.wait_member(room, other_user_id, timeout=30)
        return room

    async def create_room(self, *, name: str | None = None, invite: list[str] = (), encrypted: bool = True) -> str:
        return (await self.call("create_room", {"name": name, "invite": list(invite), "encrypted": encrypted}))["room_id"]

    async def invites(self) -> list[dict]:
        """Pending invites not yet taken: ``room_id``, ``room_type`` (``m.space`` for a space), ``sender``,
        ``is_direct``, ``name``."""
        return await self.call("invites")

    async def wait_invite(self, *, sender: str | None = None, name_contains: str | None = None,
                          room_id: str | None = None, timeout: float = 30) -> dict:
        """The first pending invite matching all given criteria (then taken, not returned again)."""
        params = {"sender": sender, "name_contains": name_contains, "room_id": room_id, "timeout": timeout}
        return await self.call("wait_invite", params, timeout=timeout + 30)

    async def join(self, room_id: str, retries: int = 10) -> None:
        """Join (normally after an invite), retrying a 403 "not invited" that follows a
        cross-server invite; returns once the room is synced."""
        await self.call("join", {"room_id": room_id, "retries": retries}, timeout=90)

    async def wait_member(self, room_id: str, user_id: str, membership: str = "join", timeout: float = 30) -> None:
        params = {"room_id": room_id, "user_id": user_id, "membership": membership, "timeout": timeout}
        await self.call("wait_member", params, timeout=timeout + 30)

    async def is_encrypted(self, room_id: str) -> bool:
        return (await self.call("is_encrypted", {"room_id": room_id}))["encrypted"]

    # ------------------------------------------------------------------ sending
    async def send(self, room_id: str, body: str, *, reply_to: str | None = None, thread_root: str | None = None,
                   msgtype: str = "m.text") -> str:
        """Send a text message (a reply with ``reply_to``, in a thread with ``thread_root``); its event id."""
        params = {"room_id": room_id, "body": body, "reply_to": reply_to, "thread_root": thread_root, "msgtype": msgtype}
        result = await self.call("send_text", params)
        return result["event_id"]

    async def send_file(self, room_id: str, data: bytes, filename: str, mimetype: str = "application/octet-stream",
                        *, reply_to: str | None = None, thread_root: str | None = None) -> dict:
        """Upload and send an ``m.file`` as Element does: in an encrypted room the file itself is
        encrypted (AES-CTR, key in the event's ``file``), elsewhere uploaded plain. Returns
        ``event_id``, ``mxc`` and ``encrypted_file``."""
        params = {
            "room_id": room_id, "data_b64": base64.b64encode(data).decode(), "filename": filename,
            "mimetype": mimetype, "reply_to": reply_to, "thread_root": thread_root,
        }
        return await self.call("send_file", params, timeout=120)

    # ------------------------------------------------------------------ receiving
    async def mark(self, room_id: str) -> int:
        """A position among others' events received in the room, to pass as ``since``."""
        return (await self.call("mark", {"room_id": room_id}))["mark"]

    async def wait_event(self, room_id: str, *, since: int | None = None, timeout: float = 30, **predicate: Any) -> dict:
        """The first event of another user in the room, received after ``since`` (a ``mark()``;
        default: after this call), matching every criterion given: ``sender``, ``not_sender``,
        ``body_contains``, ``type``, ``msgtype``, ``in_reply_to``, ``answers`` (a reply to, or in the
        thread of, that event id), ``undecryptable`` (True/False), ``event_id``.

        Returns the event as this client shows it: ``event_id``, ``sender``, ``sender_device``,
        ``type`` and ``content`` (decrypted), ``wire_type``, ``encrypted``, ``decryption_failure``
        (the SDK's reason code, e.g. ``UNSIGNED_SENDER_DEVICE``, or None) and ``shield`` (None, or
        ``{"colour": "NONE"|"GREY"|"RED", "reason": ...}`` from getEncryptionInfoForEvent)."""
        params = {"room_id": room_id, "since": since, "timeout": timeout, **predicate}
        try:
            return await self.call("wait_event", params, timeout=timeout + 30)
        except ElementError as e:  # the client's own timeout, listing what it saw
            raise TimeoutError(str(e)) from None

    async def command(self, room_id: str, body: str, *, reply_to: str | None = None,
                      thread_root: str | None = None, timeout: float = 30) -> dict:
        """Send ``body`` and wait for another user's answer to it (a reply to it, or in the thread
        rooted at it), decryptable or not: the caller checks ``decryption_failure``/``shield``."""
        mark = await self.mark(room_id)
        sent = await self.send(room_id, body, reply_to=reply_to, thread_root=thread_root)
        answer = await self.wait_event(room_id, since=mark, timeout=timeout, answers=sent, not_sender=self.user_id)
        answer["command_event_id"] = sent
        return answer

    async def events(self, room_id: str, since: int = 0) -> list[dict]:
        """Every event of others received in the room (after ``since``), as in ``wait_event``."""
        return await self.call("events", {"room_id": room_id, "since": since})

    async def get_event(self, room_id: str, event_id: str, timeout: float = 30) -> dict:
        """One event by id as this client shows it now (fetched from the server if not yet seen)."""
        return await self.call("get_event", {"room_id": room_id, "event_id": event_id, "timeout": timeout}, timeout=timeout + 30)

    # ------------------------------------------------------------------ trust
    async def user_devices(self, user_id: str) -> list[str]:
        """Device ids of ``user_id`` that this client knows (asking the server afresh)."""
        return await self.call("user_devices", {"user_id": user_id})

    async def device_status(self, user_id: str, device_id: str) -> dict | None:
        """This client's view of another device: ``signed_by_owner``, ``cross_signing_verified``,
        ``locally_verified``, ``verified``; None for an unknown device."""
        return await self.call("device_status", {"user_id": user_id, "device_id": device_id})

    async def user_identity(self, user_id: str) -> dict:
        """This client's view of another user's identity: ``known``, ``verified``,
        ``needs_user_approval`` (changed since first seen), ``was_verified``."""
        return await self.call("user_identity", {"user_id": user_id})

    def __repr__(self) -> str:
        return f"<ElementUser {self.user_id} {self.device_id}>"
