"""A test-side Matrix user: matrix-nio's AsyncClient over real HTTP to a real homeserver.

Every user runs a background sync loop that records, per room, the raw event dicts
(``event.source``) of its timeline, plus pending invites. Waiting helpers scan those
records, so nothing that arrives between "send" and "wait" is lost as long as you
take a ``mark()`` before causing it (``command()`` does this for you).
"""

from __future__ import annotations

import asyncio
import io
import itertools
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

from nio import (
    AsyncClient,
    AsyncClientConfig,
    JoinError,
    JoinResponse,
    MegolmEvent,
    RoomCreateError,
    RoomMessagesError,
    RoomPreset,
    RoomSendResponse,
    SyncResponse,
    UploadResponse,
    WhoamiResponse,
)

from devtools.homeserver import Homeserver

Event = dict[str, Any]
Predicate = Callable[[Event], bool]

_SYNC_FILTER = {
    "room": {
        "timeline": {"limit": 500},
        "ephemeral": {"not_types": ["*"]},
        "account_data": {"not_types": ["*"]},
    },
    "presence": {"not_types": ["*"]},
    "account_data": {"not_types": ["*"]},
}

_counter = itertools.count(1)


class MatrixError(Exception):
    """A Matrix API call answered with an error."""

    def __init__(self, what: str, response: Any):
        self.response = response
        self.errcode = getattr(response, "status_code", None)
        self.message = getattr(response, "message", None)
        super().__init__(f"{what}: {self.errcode} {self.message}")


async def register(hs: Homeserver, localpart: str, password: str | None = None) -> tuple[str, str, str]:
    """A test user's account on ``hs``, registered (or logged in to, if it exists) with ``password``,
    by default ``pw-<localpart>`` so that any client of the same user logs in alike. Returns the
    user id, an access token and the password."""
    password = password or f"pw-{localpart}"
    user_id, token = await asyncio.to_thread(hs.register, localpart, password)
    return user_id, token, password


def _summary(ev: Event) -> str:
    content = ev.get("content") or {}
    bits = [ev.get("type", "?"), ev.get("sender", "?")]
    if "msgtype" in content:
        bits.append(content["msgtype"])
    if "membership" in content:
        bits.append(content["membership"])
    if "body" in content:
        body = str(content["body"]).replace("\n", "\\n")
        bits.append(repr(body[:120] + ("…" if len(body) > 120 else "")))
    rel = content.get("m.relates_to") or {}
    if rel:
        irt = (rel.get("m.in_reply_to") or {}).get("event_id")
        bits.append(f"rel={rel.get('rel_type')}:{rel.get('event_id')} reply_to={irt}")
    return f"{ev.get('event_id', '?')} " + " ".join(bits)


def _invite_source(ev: Any) -> Event:
    """nio's InviteMemberEvent.from_dict pops "content" out of the raw dict; put it back."""
    src = dict(ev.source)
    if "content" not in src and isinstance(getattr(ev, "content", None), dict):
        src["content"] = ev.content
    return src


def _safe(predicate: Predicate, ev: Event) -> bool:
    try:
        return bool(predicate(ev))
    except (KeyError, TypeError, IndexError, AttributeError):
        return False


class MatrixUser:
    user_id: str
    hs: Homeserver
    client: AsyncClient

    def __init__(self, hs: Homeserver, client: AsyncClient):
        self.hs = hs
        self.client = client
        self.user_id = client.user_id
        self._timeline: dict[str, list[Event]] = {}
        self._invites: dict[str, dict] = {}  # room_id -> invite info, not yet taken
        self._taken_invites: set[str] = set()
        self._undecrypted: dict[tuple[str, int], MegolmEvent] = {}  # (room, position) -> event whose room key has not come
        self._decrypted_late: dict[str, list[int]] = {}  # room -> positions decrypted after they arrived, in order
        self._changed = asyncio.Event()
        self._sync_task: asyncio.Task | None = None
        self._sync_error: str | None = None
        self._synced_once = asyncio.Event()
        self._closed = False

    # ------------------------------------------------------------------ lifecycle
    @classmethod
    async def create(
        cls,
        hs: Homeserver,
        localpart: str,
        password: str | None = None,
        *,
        encrypted: bool = False,
        store_dir: Path | None = None,
        cross_signed: bool = True,
    ) -> "MatrixUser":
        """Register (or log in, if it exists) and start the background sync.

        ``encrypted=True`` makes an end-to-end encryption capable client (its crypto store in
        ``store_dir``, default a fresh temporary folder): it uploads, queries and claims keys in
        its sync loop, decrypts what it receives and encrypts what it sends into encrypted rooms,
        sharing room keys with every device (unverified ones too). An event whose room key has
        not come stays in the timeline as an ``m.room.encrypted`` dict until the key comes; then it
        is decrypted in its place, as Element does (``wait_for`` sees it then). Its device is cross-signed by its own new identity,
        as Element sets one up at login, unless ``cross_signed=False`` (an insecure device)."""
        user_id, token, password = await register(hs, localpart, password)
        config = AsyncClientConfig(
            max_limit_exceeded=0,
            max_timeouts=2,
            request_timeout=30,
            encryption_enabled=encrypted,
            store_sync_tokens=False,
        )
        if encrypted:
            store_dir = Path(store_dir or tempfile.mkdtemp(prefix=f"ako-e2ee-{localpart}-"))
            store_dir.mkdir(parents=True, exist_ok=True)
        client = AsyncClient(hs.client_url, user_id, store_path=str(store_dir) if encrypted else "", config=config)
        client.access_token = token
        who = await client.whoami()
        if not isinstance(who, WhoamiResponse):
            await client.close()
            raise MatrixError(f"whoami for {user_id}", who)
        if who.device_id:
            client.restore_login(who.user_id, who.device_id, token)
        else:
            client.user_id = who.user_id
        if encrypted and client.olm is None:
            await client.close()
            raise MatrixError(f"{user_id} has no device for end-to-end encryption", who)
        if encrypted and cross_signed:
            await _cross_sign(client, password)
        self = cls(hs, client)
        self._password = password
        # the first sync establishes "now"; later waits only see newer events
        await self._sync_once(timeout_ms=0)
        self._sync_task = asyncio.create_task(self._sync_loop(), name=f"sync {user_id}")
        return self

    async def cross_sign_device(self) -> None:
        """Set up this user's cross-signing identity now and sign this device with it, as verifying
        a new login does (for a client made with ``cross_signed=False``)."""
        await _cross_sign(self.client, self._password)

    async def close(self) -> None:
        self._closed = True
        if self._sync_task is not None:
            self._sync_task.cancel()
            try:
                await self._sync_task
            except (asyncio.CancelledError, Exception):
                pass
        await self.client.close()

    async def __aenter__(self) -> "MatrixUser":
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()

    # ------------------------------------------------------------------ sync
    @property
    def encrypted(self) -> bool:
        return self.client.olm is not None

    async def _key_upkeep(self) -> None:
        """What sync_forever would do for encryption: keys up, keys of others in, to-device out."""
        c = self.client
        if c.olm is None:
            return
        if c.should_upload_keys:
            await c.keys_upload()
        if c.should_query_keys:
            await c.keys_query()
        if c.should_claim_keys:
            await c.keys_claim(c.get_users_for_key_claiming())
        await c.send_to_device_messages()

    async def _sync_once(self, timeout_ms: int) -> None:
        await self._key_upkeep()
        resp = await self.client.sync(timeout=timeout_ms, sync_filter=_SYNC_FILTER)
        if not isinstance(resp, SyncResponse):
            raise MatrixError(f"sync for {self.user_id}", resp)
        self._ingest(resp)

    async def _sync_loop(self) -> None:
        while not self._closed:
            try:
                await self._sync_once(timeout_ms=10_000)
                self._sync_error = None
            except asyncio.CancelledError:
                raise
            except Exception as e:  # keep going; surfaced in TimeoutError messages
                self._sync_error = f"{type(e).__name__}: {e}"
                self._notify()
                await asyncio.sleep(0.5)

    def _ingest(self, resp: SyncResponse) -> None:
        self._decrypt_late()  # room keys that came in this sync's to-device messages
        for room_id, info in resp.rooms.join.items():
            self._append(room_id, info.timeline.events)
            self._invites.pop(room_id, None)
        for room_id, info in resp.rooms.leave.items():
            self._append(room_id, info.timeline.events)
            self._invites.pop(room_id, None)
            self._taken_invites.discard(room_id)  # a later re-invite counts again
        for room_id, info in resp.rooms.invite.items():
            if room_id in self._taken_invites:
                continue
            state = [_invite_source(ev) for ev in info.invite_state]
            inviter, is_direct = None, False
            for ev in state:
                if ev.get("type") == "m.room.member" and ev.get("state_key") == self.user_id:
                    inviter = ev.get("sender")
                    is_direct = bool((ev.get("content") or {}).get("is_direct"))
            self._invites[room_id] = {
                "room_id": room_id,
                "sender": inviter,
                "is_direct": is_direct,
                "state": state,
            }
        self._notify()

    def _append(self, room_id: str, timeline: list) -> None:
        events = self._timeline.setdefault(room_id, [])
        for ev in timeline:
            if isinstance(ev, MegolmEvent):
                self._undecrypted[(room_id, len(events))] = ev
            events.append(ev.source)

    def _decrypt_late(self) -> None:
        """As Element does: an event whose room key arrives later is decrypted then, in its place."""
        for (room_id, at), ev in list(self._undecrypted.items()):
            try:
                decrypted = self.client.decrypt_event(ev)
            except Exception:  # still no key
                continue
            del self._undecrypted[(room_id, at)]
            self._timeline[room_id][at] = decrypted.source
            self._decrypted_late.setdefault(room_id, []).append(at)

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    async def _wait_change(self, deadline: float) -> bool:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        try:
            await asyncio.wait_for(self._changed.wait(), remaining)
        except asyncio.TimeoutError:
            return False
        return True

    # ------------------------------------------------------------------ rooms
    def timeline(self, room_id: str) -> list[Event]:
        """All timeline events (raw dicts) received in the room so far (a live list)."""
        return self._timeline.setdefault(room_id, [])

    def mark(self, room_id: str) -> int:
        """A position in the room's timeline to pass as ``wait_for(..., since=mark)``."""
        return len(self.timeline(room_id))

    async def dm(self, other_user_id: str, *, name: str | None = None, encrypted: bool = False) -> str:
        """A direct message room with ``other_user_id`` invited; ``encrypted`` as Element makes them."""
        initial_state = []
        if encrypted:
            initial_state.append({"type": "m.room.encryption", "state_key": "", "content": {"algorithm": "m.megolm.v1.aes-sha2"}})
        resp = await self.client.room_create(
            is_direct=True,
            preset=RoomPreset.private_chat,
            invite=[other_user_id],
            name=name,
            initial_state=initial_state,
        )
        if isinstance(resp, RoomCreateError):
            raise MatrixError(f"{self.user_id} creating a DM with {other_user_id}", resp)
        self.timeline(resp.room_id)
        return resp.room_id

    async def join(self, room_id: str, retries: int = 10) -> None:
        """Join (normally after an invite). A 403 "not invited" right after a
        cross-server invite is retried with short delays (the invite has not yet
        reached this server's view)."""
        for attempt in range(retries + 1):
            resp = await self.client.join(room_id)
            if isinstance(resp, JoinResponse):
                self._taken_invites.add(room_id)
                self._invites.pop(room_id, None)
                self.timeline(room_id)
                return
            assert isinstance(resp, JoinError)
            msg = (resp.message or "").lower()
            transient = resp.status_code in ("M_FORBIDDEN", "M_NOT_FOUND") or "no known servers" in msg
            if not transient or attempt == retries:
                raise MatrixError(f"{self.user_id} joining {room_id} (attempt {attempt + 1})", resp)
            await asyncio.sleep(0.1 + 0.1 * attempt)

    async def wait_invite(self, predicate: Callable[[dict], bool] | None = None, timeout: float = 20) -> str:
        """Wait for a pending invite (one not yet returned by this method or joined)
        and return its room id. ``predicate`` gets a dict with ``room_id``, ``sender``
        (the inviter), ``is_direct`` and ``state`` (the stripped state events)."""
        deadline = time.monotonic() + timeout
        while True:
            for room_id, info in list(self._invites.items()):
                if predicate is None or _safe(predicate, info):
                    self._invites.pop(room_id, None)
                    self._taken_invites.add(room_id)
                    return room_id
            if not await self._wait_change(deadline):
                seen = [f"{i['room_id']} from {i['sender']}" for i in self._invites.values()]
                raise TimeoutError(
                    f"{self.user_id}: no matching invite within {timeout}s; pending: {seen or 'none'}"
                    + (f"; last sync error: {self._sync_error}" if self._sync_error else "")
                )

    # ------------------------------------------------------------------ sending
    def _last_thread_event(self, room_id: str, thread_root: str) -> str:
        for ev in reversed(self._timeline.get(room_id, [])):
            rel = (ev.get("content") or {}).get("m.relates_to") or {}
            if rel.get("rel_type") == "m.thread" and rel.get("event_id") == thread_root:
                return ev["event_id"]
        return thread_root

    async def send(
        self,
        room_id: str,
        body: str,
        *,
        formatted_body: str | None = None,
        reply_to: str | None = None,
        thread_root: str | None = None,
        msgtype: str = "m.text",
    ) -> str:
        content: dict[str, Any] = {"msgtype": msgtype, "body": body}
        if formatted_body is not None:
            content["format"] = "org.matrix.custom.html"
            content["formatted_body"] = formatted_body
        if thread_root is not None:
            content["m.relates_to"] = {
                "rel_type": "m.thread",
                "event_id": thread_root,
                "is_falling_back": reply_to is None,
                "m.in_reply_to": {"event_id": reply_to or self._last_thread_event(room_id, thread_root)},
            }
        elif reply_to is not None:
            content["m.relates_to"] = {"m.in_reply_to": {"event_id": reply_to}}
        return await self.send_content(room_id, content)

    async def send_content(self, room_id: str, content: dict, event_type: str = "m.room.message") -> str:
        """Send an arbitrary event content; returns the event id."""
        if self.client.olm is not None:  # nio encrypts only for rooms it has synced (a join is not enough)
            deadline = time.monotonic() + 30
            while room_id not in self.client.rooms and await self._wait_change(deadline):
                pass
        resp = await self.client.room_send(room_id, event_type, content, ignore_unverified_devices=True)
        if not isinstance(resp, RoomSendResponse):
            raise MatrixError(f"{self.user_id} sending to {room_id}", resp)
        return resp.event_id

    async def upload(self, data: bytes, filename: str, mimetype: str) -> str:
        """Upload bytes to the media repo; returns the mxc:// URI."""
        resp, _ = await self.client.upload(
            io.BytesIO(data), content_type=mimetype, filename=filename, filesize=len(data)
        )
        if not isinstance(resp, UploadResponse):
            raise MatrixError(f"{self.user_id} uploading {filename}", resp)
        return resp.content_uri

    async def send_file(
        self, room_id: str, data: bytes, filename: str, mimetype: str, *, msgtype: str = "m.file"
    ) -> str:
        url = await self.upload(data, filename, mimetype)
        content = {
            "msgtype": msgtype,
            "body": filename,
            "filename": filename,
            "url": url,
            "info": {"mimetype": mimetype, "size": len(data)},
        }
        return await self.send_content(room_id, content)

    async def download(self, mxc: str) -> bytes:
        """Fetch media via the authenticated endpoint (/_matrix/client/v1/media/download)."""
        resp = await self.client.download(mxc)
        body = getattr(resp, "body", None)
        if not isinstance(body, (bytes, bytearray)):
            raise MatrixError(f"{self.user_id} downloading {mxc}", resp)
        return bytes(body)

    # ------------------------------------------------------------------ receiving
    async def wait_for(
        self,
        room_id: str,
        predicate: Predicate,
        timeout: float = 30,
        *,
        since: int | None = None,
    ) -> Event:
        """First timeline event (raw dict) in the room matching ``predicate``, among
        events received after this call, or after ``since`` (a ``mark()``) if given.
        A predicate raising KeyError/TypeError/IndexError/AttributeError counts as no match.
        Raises TimeoutError listing what was seen."""
        events = self.timeline(room_id)
        start = len(events) if since is None else since
        pos = start
        late = self._decrypted_late.setdefault(room_id, [])
        looked_late = len(late)
        deadline = time.monotonic() + timeout
        while True:
            while pos < len(events):
                ev = events[pos]
                pos += 1
                if _safe(predicate, ev):
                    return ev
            while looked_late < len(late):  # an event already passed over, now decrypted
                at = late[looked_late]
                looked_late += 1
                if start <= at < pos and _safe(predicate, events[at]):
                    return events[at]
            if not await self._wait_change(deadline):
                seen = "\n  ".join(_summary(ev) for ev in events[start:]) or "(nothing)"
                raise TimeoutError(
                    f"{self.user_id}: no matching event in {room_id} within {timeout}s; seen:\n  {seen}"
                    + (f"\nlast sync error: {self._sync_error}" if self._sync_error else "")
                )

    async def command(
        self,
        room_id: str,
        body: str,
        *,
        reply_to: str | None = None,
        thread_root: str | None = None,
        timeout: float = 30,
    ) -> dict:
        """Send ``body`` and wait for an m.notice from someone else answering it: a reply
        to the sent event, or in the thread (the given ``thread_root``, or a thread
        rooted at the sent event). Returns that notice's content plus ``event_id`` and
        ``sender``."""
        mark = self.mark(room_id)
        sent = await self.send(room_id, body, reply_to=reply_to, thread_root=thread_root)
        roots = {sent} | ({thread_root} if thread_root else set())

        def answers(ev: Event) -> bool:
            if ev.get("type") != "m.room.message" or ev.get("sender") == self.user_id:
                return False
            content = ev.get("content") or {}
            if content.get("msgtype") != "m.notice":
                return False
            rel = content.get("m.relates_to") or {}
            irt = (rel.get("m.in_reply_to") or {}).get("event_id")
            if irt == sent:
                return True
            if rel.get("rel_type") == "m.thread" and rel.get("event_id") in roots:
                # a real (non-fallback) reply to some other event answers that event
                return irt is None or bool(rel.get("is_falling_back"))
            return False

        ev = await self.wait_for(room_id, answers, timeout, since=mark)
        return {**ev["content"], "event_id": ev["event_id"], "sender": ev["sender"]}

    def notices(self, room_id: str) -> list[dict]:
        """Contents (plus ``event_id``, ``sender``) of all m.notice messages seen in the room."""
        return [
            {**ev["content"], "event_id": ev.get("event_id"), "sender": ev.get("sender")}
            for ev in self._timeline.get(room_id, [])
            if ev.get("type") == "m.room.message" and (ev.get("content") or {}).get("msgtype") == "m.notice"
        ]

    async def messages(self, room_id: str, limit: int = 100) -> list[Event]:
        """Latest ``limit`` events via /messages (newest first), as raw dicts; raises
        MatrixError (e.g. M_FORBIDDEN) if this user may not read the room."""
        resp = await self.client.room_messages(room_id, start=None, limit=limit)
        if isinstance(resp, RoomMessagesError):
            raise MatrixError(f"{self.user_id} reading /messages of {room_id}", resp)
        return [ev.source for ev in resp.chunk]

    def __repr__(self) -> str:
        return f"<MatrixUser {self.user_id}>"


async def _cross_sign(client: AsyncClient, password: str) -> None:
    """Set up the user's own cross-signing identity and sign this device with it (bot/identity.py)."""
    from bot import identity

    if client.should_upload_keys:
        await client.keys_upload()
    ours = identity.Identity.generate()
    await identity.upload(client, ours, password)
    device = (await identity.published(client)).device_keys
    if device is None:
        raise MatrixError(f"no device keys on the server for {client.user_id}", None)
    await identity.sign_device(client, ours, device)


def unique_localpart(prefix: str = "user") -> str:
    """A localpart unique within this test session (servers are session-scoped)."""
    return f"{prefix}{next(_counter)}"
