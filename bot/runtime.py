"""Ako's I/O: login, the sync loop, answering invites, the outbox. What each event is, and what
Ako does about it, is decided in bot/routing.py; replies become outbox rows in bot/replies.py."""

from __future__ import annotations

import asyncio
import json
import logging
import random
import enum
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import nio

import commands
from commands import admission
from commands.context import Message, Redaction, RoomChange, Services, Settings
from commands.dispatch import CommandEvent, Dispatcher, Outcome
from storage import retention
from storage.db import Database
from storage.models import RoomKind, server_of
from storage.repositories import Repositories

from . import encryption as e2ee
from . import replies
from .config import Config
from .client import Client
from .fault_points import crash_point
from .flood import FloodGate, flood_notice
from .gateway import CREATOR_POWER_VERSIONS, MatrixGateway, canonical
from .routing import (
    IGNORE,
    Action,
    AnswerInvite,
    AwaitKey,
    Ignore,
    Known,
    RestorePower,
    RunCommand,
    ShowListeners,
    after_own_join,
    carrier,
    own_join_at,
    route,
    route_invite,
)
from .scheduler import Scheduler
from .sender import RETRY_CAP, OutboxSender

log = logging.getLogger("ako")

READY_FILE = "ako.ready"
SYNC_TIMEOUT_MS = 30_000
JOIN_WAIT = 10.0  # seconds the sync loop waits for a join before it carries on without it
# A batch with nothing to record (ordinary chat) moves the saved position at most this often: a
# crash replays at most that much, harmlessly, and a quiet stream costs no fsync per sync.
QUIET_POSITION_EVERY = 30.0
# Lazy-loaded members and no presence: the bot needs timelines, not every member list.
SYNC_FILTER = {
    "presence": {"not_types": ["*"]},
    "account_data": {"not_types": ["*"]},
    "room": {
        "state": {"lazy_load_members": True},
        # Small on purpose: a busy room's gap is filled from /messages (see _fill_gap), and a
        # restart with thousands of rooms does not pull 50 events of each.
        "timeline": {"limit": 10},
        "ephemeral": {"not_types": ["*"]},
        "account_data": {"not_types": ["*"]},
    },
}


class RoomChangeDone:
    """A kick or leave carried out: it makes no event of its own to record."""

    event_id = ""


class Batch(enum.Enum):
    """What became of a sync batch, for saving its position."""

    POSITION_SAVED = "its position was committed with the last event that recorded anything"
    CHANGED = "something happened whose position must be saved alone"
    NOTHING = "nothing in it to act on"


class GapNotFilled(RuntimeError):
    """Events a limited timeline skipped could not be fetched, for now."""


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(timezone.utc)


@dataclass
class Session:
    user_id: str
    device_id: str
    access_token: str
    homeserver: str


class Ako:
    def __init__(self, config: Config, clock=None):
        self.config = config
        self.clock = clock or SystemClock()
        self.data_dir: Path = config.bot.data_dir
        self.prefix = config.bot.command_prefix
        self.user_id = config.matrix.user_id
        self.client: nio.AsyncClient | None = None
        self.db: Database | None = None
        self.repos: Repositories | None = None
        self.dispatcher: Dispatcher | None = None
        self.gateway: MatrixGateway | None = None
        self.scheduler: Scheduler | None = None
        self.e2ee: e2ee.Encryption | None = None
        self.new_crypto_store = False
        self._synced = asyncio.Event()  # set after the first sync: nio knows the rooms, the outbox may send
        self.sender: OutboxSender | None = None
        self._stopping = asyncio.Event()
        self._syncing: asyncio.Task | None = None
        self._background: set[asyncio.Task] = set()
        self._joining: dict[str, asyncio.Task] = {}  # invites being accepted, by room
        self._unsaved_position: str | None = None  # of a quiet batch, saved later or at stop
        self._position_saved_at = time.monotonic()
        self.flood = FloodGate()
        self.settings: Settings | None = None
        self.known = Known(self.user_id, self.prefix)

    # --- start-up

    async def login(self) -> nio.AsyncClient:
        """Log in, reusing the device (and token) kept in data_dir so restarts are the same device.

        With encryption, the device's crypto store (data_dir/crypto) is part of the device: a saved
        device without its store would come back with new keys under an old id, which other clients
        refuse, so a new device is started instead.
        """
        cfg = self.config.matrix
        encryption = self.config.bot.encryption
        session_file = self.data_dir / "session.json"
        saved: Session | None = None
        if session_file.exists():
            raw = json.loads(session_file.read_text())
            if raw.get("user_id") == cfg.user_id and raw.get("homeserver") == cfg.homeserver:
                saved = Session(**raw)
        if saved and encryption and cfg.password and not e2ee.store_file(self.data_dir, saved.user_id, saved.device_id).exists():
            log.warning("Device %s has no crypto store in %s; starting a new device", saved.device_id, e2ee.store_dir(self.data_dir))
            await self._log_out(saved)
            saved = None
        store_path = ""
        self.new_crypto_store = encryption and not (saved and e2ee.store_file(self.data_dir, saved.user_id, saved.device_id).exists())
        if encryption:
            e2ee.store_dir(self.data_dir).mkdir(parents=True, exist_ok=True)
            store_path = str(e2ee.store_dir(self.data_dir))
        client_config = e2ee.client_config(encryption, max_limit_exceeded=None, max_timeouts=2, request_timeout=60)
        client = Client(
            cfg.homeserver, cfg.user_id, device_id=saved.device_id if saved else None, store_path=store_path, config=client_config
        )
        if saved:
            client.restore_login(saved.user_id, saved.device_id, saved.access_token)  # loads the crypto store of that device
            who = await client.whoami()
            if not isinstance(who, nio.ErrorResponse):
                log.info("Resumed session of %s on device %s", cfg.user_id, saved.device_id)
                return client
            log.warning("Saved session no longer valid (%s); logging in again on the same device", who.message)
            client.access_token = ""
        if cfg.access_token:
            client.user_id, client.access_token = cfg.user_id, cfg.access_token
            who = await client.whoami()
            if isinstance(who, nio.ErrorResponse):
                await client.close()
                raise RuntimeError(f"The access token in matrix.access_token was refused: {who.message}")
            if who.device_id:
                client.restore_login(cfg.user_id, who.device_id, cfg.access_token)
            elif encryption:
                await client.close()
                raise RuntimeError(
                    "The access token in matrix.access_token belongs to no device, and end-to-end encryption needs one: "
                    "log in with matrix.password, or set bot.encryption = false."
                )
        else:
            resp = await client.login(cfg.password, device_name=cfg.device_name)
            if isinstance(resp, nio.ErrorResponse):
                await client.close()
                raise RuntimeError(f"Login as {cfg.user_id} failed: {resp.message}")
        session_file.write_text(
            json.dumps(
                {"user_id": client.user_id, "device_id": client.device_id, "access_token": client.access_token, "homeserver": cfg.homeserver}
            )
        )
        session_file.chmod(0o600)
        log.info("Logged in as %s on device %s", client.user_id, client.device_id)
        return client

    async def _log_out(self, saved: Session) -> None:
        """End a device we will not use again, so it does not linger in everyone's device lists."""
        old = nio.AsyncClient(saved.homeserver, saved.user_id, device_id=saved.device_id, config=e2ee.client_config(False, max_timeouts=1, request_timeout=20))
        old.user_id, old.access_token = saved.user_id, saved.access_token
        try:
            resp = await old.logout()
            if isinstance(resp, nio.ErrorResponse):
                log.info("Could not log out old device %s: %s", saved.device_id, resp.message)
        except Exception as e:  # best effort: the new device works either way
            log.info("Could not log out old device %s: %s", saved.device_id, e)
        finally:
            await old.close()

    async def _creator_power(self) -> bool:
        """Whether new rooms on the bot's server are v12+ (creators hold unlimited power)."""
        try:
            resp = await self.client.send("GET", "/_matrix/client/v3/capabilities", headers={"Authorization": f"Bearer {self.client.access_token}"})
            caps = await resp.json()
            return caps["capabilities"]["m.room_versions"]["default"] in CREATOR_POWER_VERSIONS
        except Exception:  # an old or unusual server: list the bot in power levels explicitly
            log.warning("Could not read the homeserver's default room version; assuming pre-v12 rooms")
            return False

    async def start(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        (self.data_dir / READY_FILE).unlink(missing_ok=True)
        db = await Database.open(self.data_dir / "ako.db")
        self.db = db  # closed by close() even if logging in fails
        client = await self.login()
        self.client = client
        gateway = MatrixGateway(client, self.user_id, server_of(self.user_id), await self._creator_power())
        self.assemble(db, client, gateway)

    def assemble(self, db: Database, client, gateway) -> None:
        """Wire the parts around a database, a logged-in client and the room gateway (no I/O)."""
        self.db, self.client, self.gateway = db, client, gateway
        self.repos = Repositories.over(db)
        b = self.config.bot
        self.settings = Settings(
            prefix=b.command_prefix,
            operators=frozenset(b.operators),
            timezone=b.timezone,
            allow_guests=b.allow_guests,
            max_upload_mb=b.max_upload_mb,
            encrypt_work_rooms=b.encryption and b.encrypt_work_rooms,
            bot_user_id=self.user_id,
            reminder_offsets=tuple(b.offsets()),
            reminder_grace=b.grace(),
        )
        services = Services(self.repos, gateway, self.clock, self.settings)
        registry = commands.load()
        self.known = Known(self.user_id, self.prefix, wanted=lambda event, root: bool(registry.wanting(event, root)))
        self.dispatcher = Dispatcher(registry, services, self.enqueue)
        self.scheduler = Scheduler(services, self.enqueue)
        services.timetable = self.scheduler  # handlers tell the clock when they change what is due
        self.sender = OutboxSender(self.repos.outbox, self._send, self.clock)
        if client is not None:  # tests assemble Ako around no client
            client.rate_limit = self.sender.rate_limit  # a 429 is per user: every send waits its turn

    async def close(self) -> None:
        if self.client:
            await self.client.close()
        if self.db:
            await self.db.close()

    async def run(self) -> None:
        await self.start()
        sender = asyncio.create_task(self._send_outbox(), name="outbox")
        sweeping = asyncio.create_task(retention.keep_sweeping(self.db, self.clock), name="retention")
        self.scheduler.start()  # first catches up on what fell due while the bot was down
        self._syncing = asyncio.create_task(self._sync_forever(), name="sync")
        try:
            await self._syncing
        except asyncio.CancelledError:
            log.info("Stopping")
        finally:
            self.scheduler.shutdown()
            sender.cancel()
            sweeping.cancel()
            await asyncio.gather(sender, sweeping, return_exceptions=True)
            if self._unsaved_position is not None:  # every event before it was handled
                await self.repos.sync.save_next_batch(self._unsaved_position)
            await self.close()

    def stop(self) -> None:
        """Stop now: a long-poll sync in flight is cancelled; an unfinished command is rolled back
        and handled again at the next start."""
        self._stopping.set()
        if self._syncing is not None:
            self._syncing.cancel()

    # --- the sync loop

    async def _sync_forever(self) -> None:
        b = self.config.bot
        self.e2ee = e2ee.Encryption(
            self.client,
            self.db,
            bot_user_id=self.user_id,
            allow_guests=b.allow_guests,
            clock=self.clock,
            enqueue=self.enqueue,
            exclude_insecure=b.exclude_insecure_devices,
            data_dir=self.data_dir,
            password=self.config.matrix.password,
            new_store=self.new_crypto_store,
        )
        await self.e2ee.start()
        await self.repos.sync.load_joined()
        token = await self.repos.sync.next_batch()
        first_start = token is None
        if first_start:
            log.info("First start: skipping the backlog, acting only on what arrives from now on")
        # nio keeps no room state across restarts and we resume from our own token, without asking
        # for every room's full state (30 s at 3,200 rooms; bench/RESULTS.md): nio's crypto store
        # keeps which rooms are encrypted, a room that became encrypted meanwhile brings its
        # m.room.encryption in this sync, sending fetches members nio lacks, and
        # Encryption._know_room asks the server about any room nio has not seen.
        delay = 1.0
        ready = self.data_dir / READY_FILE
        while not self._stopping.is_set():
            await self.e2ee.upkeep()
            timeout = 0 if first_start or not self._synced.is_set() else SYNC_TIMEOUT_MS
            give_up_in = await self.e2ee.seconds_to_next_give_up()
            if give_up_in is not None:  # wake up in time to give up on a message whose key never came
                timeout = min(timeout, max(1000, int(give_up_in * 1000) + 100))
            try:
                resp = await self.client.sync(timeout=timeout, since=token, sync_filter=SYNC_FILTER)
            except Exception as e:  # a timeout, a reset connection: the same as an error response
                resp = e
            if isinstance(resp, (nio.SyncError, Exception)):
                message = resp.message if isinstance(resp, nio.SyncError) else f"{type(resp).__name__}: {resp}"
                log.warning("Sync failed (%s); retrying in %.0f s", message, delay)
                await self._sleep(delay)
                delay = min(delay * 2, RETRY_CAP) * random.uniform(0.9, 1.1)
                continue
            if delay > 1.0:
                log.info("Sync works again")
                self.sender.reconnected.set()  # the outbox stops waiting
            delay = 1.0
            try:
                await self.handle_sync(resp, token, first_start=first_start)
            except Exception as e:  # a gap that could not be filled, a timeout: the same batch again later
                log.warning("Could not process a sync (%s: %s); trying it again in %.0f s", type(e).__name__, e, delay)
                await self._sleep(delay)
                delay = min(delay * 2, RETRY_CAP) * random.uniform(0.9, 1.1)
                continue
            token = resp.next_batch
            first_start = False
            self._synced.set()
            if not ready.exists():
                ready.write_text(token)
                log.info("Ako is ready: %s, prefix %r", self.user_id, self.prefix)

    async def _sleep(self, seconds: float) -> None:
        try:
            await asyncio.wait_for(self._stopping.wait(), timeout=seconds)
        except asyncio.TimeoutError:
            pass

    async def handle_sync(self, resp: nio.SyncResponse, since: str | None, first_start: bool = False) -> Batch:
        """Act on one sync batch, then keep its position. On the first start only the rooms are
        taken in, not their backlog."""
        batch = await self._act_on_batch(resp, since, skip_timeline=first_start)
        token = resp.next_batch
        if batch is Batch.POSITION_SAVED:
            self._position_saved_at = time.monotonic()
            self._unsaved_position = None
        elif batch is Batch.CHANGED or first_start or time.monotonic() - self._position_saved_at >= QUIET_POSITION_EVERY:
            await self.repos.sync.save_next_batch(token)
            self._position_saved_at = time.monotonic()
            self._unsaved_position = None
        else:  # nothing in it to record: replaying it after a crash costs nothing, saving it an fsync
            self._unsaved_position = token
        return batch

    async def _act_on_batch(self, resp: nio.SyncResponse, since: str | None, skip_timeline: bool) -> Batch:
        """Invites, leaves, then every new timeline event in order. The batch's position is
        committed with the last event that records anything (see routing.carrier)."""
        changed = False
        for room_id, info in resp.rooms.invite.items():
            invited = route_invite(room_id, info.invite_state, self.known)
            if isinstance(invited, AnswerInvite):
                await self.answer_invite(invited)
                changed = True
        for room_id in resp.rooms.leave:
            changed |= await self.repos.sync.mark_left(room_id)
        timeline: list[tuple[str, dict]] = []
        for room_id, info in resp.rooms.join.items():
            events, new_room = await self._new_events(room_id, info, since, skip_timeline)
            changed |= new_room
            timeline += [(room_id, event) for event in events]
        if skip_timeline:
            return Batch.CHANGED
        actions = [route(room_id, event, self.known) for room_id, event in timeline]
        for i, action in enumerate(actions):  # a thread reply under no topic: read, not written
            if isinstance(action, ShowListeners) and not await self.dispatcher.concerned(action.room_id, action.event, action.thread_root):
                actions[i] = IGNORE
        last = carrier(actions)
        for i, action in enumerate(actions):
            if not isinstance(action, Ignore):
                await self._act(action, resp.next_batch if i == last else None)
        await self.e2ee.retry_waiting(self._act_on)
        if last is not None and self.repos.sync.saved_position == resp.next_batch:  # committed with its carrier
            return Batch.POSITION_SAVED
        return Batch.CHANGED if changed or any(not isinstance(a, Ignore) for a in actions) else Batch.NOTHING

    async def _new_events(self, room_id: str, info, since: str | None, skip_timeline: bool) -> tuple[list[dict], bool]:
        """A joined room's events in this batch that Ako should see (a gap filled, only what came
        after its own join), and whether the room is new to it (recorded as joined now)."""
        events = [e.source for e in info.timeline.events]
        known = self.repos.sync.is_joined(room_id)
        # a new room's gap matters only when it hides the bot's join (and what came after it)
        gap_counts = known or own_join_at(events, self.user_id) is None
        if info.timeline.limited and since and not skip_timeline and gap_counts:
            events = await self._fill_gap(room_id, info.timeline.prev_batch, since, find_own_join=not known) + events
        if not known or own_join_at(events, self.user_id) is not None:
            # Only what happened after the bot joined counts, also when this batch is handled
            # again after a crash (the room is then already recorded as joined).
            events = after_own_join(events, self.user_id)
        if not known:
            await self.repos.sync.mark_joined(room_id, self.clock.now())
            crash_point("room-recorded")
        return events, not known

    async def _act_on(self, room_id: str, event: dict) -> None:
        """An event from outside a sync batch (a message decrypted once its key came)."""
        action = route(room_id, event, self.known)
        if not isinstance(action, Ignore):
            await self._act(action, None)

    async def _act(self, action: Action, position: str | None) -> None:
        """Carry out one routed event; ``position``, when given, is committed with its records."""
        also = None if position is None else (lambda: self.repos.sync.save_next_batch(position))
        try:
            if isinstance(action, RunCommand):
                await self._run_command(action.command, also)
            elif isinstance(action, ShowListeners):
                await self.dispatcher.observe(action.sender, action.room_id, action.event, action.thread_root, also=also)
            elif isinstance(action, RestorePower):
                await self.dispatcher.power_changed(action.sender, action.room_id, action.content)
            elif isinstance(action, AwaitKey):
                await self.e2ee.cannot_decrypt(action.room_id, action.event)
        except Exception:
            event_id = action.command.event_id if isinstance(action, RunCommand) else (getattr(action, "event", None) or {}).get("event_id")
            log.exception("%s: event %s could not be handled", type(action).__name__, event_id)

    async def _run_command(self, command: CommandEvent, also) -> None:
        if self.flood.ignoring(command.sender, time.monotonic()):
            log.info("Ignoring command %s from %s: too many failed commands in a row", command.event_id, command.sender)
            return
        crash_point("received")
        outcome = await self.dispatcher.handle(command, also=also)
        crash_point("committed")
        if outcome in (Outcome.REFUSED, Outcome.USER_ERROR, Outcome.BUG) and self.flood.failed(command.sender, time.monotonic()):
            log.warning("%s sent %d commands in %.0f s that could not be acted on; ignoring theirs for %.0f s",
                        command.sender, self.flood.limit, self.flood.window, self.flood.quiet)
            async with self.db.transaction():
                await self.enqueue([Message(command.room_id, flood_notice(self.flood, self.prefix), reply_to=command.event_id)])

    async def _fill_gap(self, room_id: str, prev_batch: str, since: str, find_own_join: bool = False) -> list[dict]:
        """A limited timeline skipped events: fetch them from /messages back to where we were (for a
        room just joined, back to the bot's join). A failure that may pass raises: the sync batch is
        then handled again, rather than its token saved with events missing."""
        fetched: list[dict] = []
        start = prev_batch
        for _ in range(50):  # at most 5,000 events per gap
            resp = await self.client.room_messages(room_id, start=start, end=since, direction=nio.MessageDirection.back, limit=100)
            if isinstance(resp, nio.ErrorResponse):
                if resp.status_code in ("M_FORBIDDEN", "M_NOT_FOUND"):  # never readable: carry on without it
                    log.warning("Could not fill the gap in %s: %s %s", room_id, resp.status_code, resp.message)
                    break
                raise GapNotFilled(f"filling the gap in {room_id} failed: {resp.status_code or 'no error code'}: {resp.message}")
            fetched.extend(e.source for e in resp.chunk)
            if not resp.chunk or not resp.end or resp.end == start:
                break
            if find_own_join and own_join_at(list(reversed(fetched)), self.user_id) is not None:
                break
            start = resp.end
        fetched.reverse()
        log.info("Filled a gap of %d events in %s", len(fetched), room_id)
        return fetched

    # --- invites

    async def answer_invite(self, invited: AnswerInvite) -> None:
        """Join, or decline a moment later, as the classroom's admission rule says."""
        room_id, inviter, direct = invited.room_id, invited.inviter, invited.direct
        who = await admission.standing(self.repos, self.settings, inviter)
        if not admission.accepts_invite(who, direct, self.config.bot.allow_guests):
            log.info("Declining invite to %s from %s (direct=%s): not an operator, staff or a school's user", room_id, inviter, direct)
            self._decline_later(room_id)
            return
        task = self._joining.get(room_id)
        if task is None:
            task = asyncio.create_task(self._join(room_id, inviter, direct), name=f"join {room_id}")
            self._joining[room_id] = task
            self._background.add(task)
            task.add_done_callback(lambda t: (self._background.discard(t), self._joining.pop(room_id, None)))
        try:  # usually done at once; a room whose server does not answer must not hold up every class
            await asyncio.wait_for(asyncio.shield(task), JOIN_WAIT)
        except asyncio.TimeoutError:
            log.warning("Joining %s is taking more than %.0f s; carrying on, the join goes on in the background", room_id, JOIN_WAIT)

    async def _join(self, room_id: str, inviter: str, direct: bool) -> None:
        resp = None
        for attempt in range(5):  # a federated invite may not have reached our server's view yet
            try:
                resp = await self.client.join(room_id)
            except Exception as e:  # a timeout, a connection reset: a room's server that does not answer
                resp = e
            if not isinstance(resp, (nio.ErrorResponse, Exception)):
                break
            await asyncio.sleep(0.3 * (attempt + 1))
        if isinstance(resp, (nio.ErrorResponse, Exception)):
            why = resp.message if isinstance(resp, nio.ErrorResponse) else f"{type(resp).__name__}: {resp}"
            log.warning("Could not join %s after invite from %s: %s", room_id, inviter, why)
            return
        crash_point("joined")
        if direct and await self.repos.rooms.get(room_id) is None:
            await self.repos.rooms.add(room_id, RoomKind.DM, None, inviter, self.clock.now())
        log.info("Joined %s on invite from %s%s", room_id, inviter, " (direct message)" if direct else "")

    def _decline_later(self, room_id: str) -> None:
        """Reject an invite after a moment: a remote inviter's server may not yet hold the invite,
        and a rejection it cannot see leaves the inviter waiting (Synapse then rejects only locally)."""

        async def decline() -> None:
            await asyncio.sleep(2)
            resp = await self.client.room_leave(room_id)
            if isinstance(resp, nio.ErrorResponse):
                log.info("Declining %s failed: %s", room_id, resp.message)

        task = asyncio.create_task(decline(), name=f"decline {room_id}")
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def invites_answered(self) -> int:
        """Wait until the joins and declines under way are done; how many there were."""
        waiting = list(self._background)
        await asyncio.gather(*waiting, return_exceptions=True)
        return len(waiting)

    # --- sending

    async def enqueue(self, messages: list[Message | Redaction | RoomChange]) -> None:
        """Called inside the handler's transaction: the replies commit with the records."""
        await replies.queue(self.repos.outbox, messages, self.gateway.upload, self.clock.now())
        self.sender.wake.set()

    async def _send(self, item) -> object:
        return await send_queued(self.client, self.e2ee.send, item)

    async def _send_outbox(self) -> None:
        await self._synced.wait()  # nio knows the rooms
        await self.sender.run()



async def send_queued(client: nio.AsyncClient, send_message, item) -> object:
    """One outbox row to the homeserver: a message through ``send_message`` (which encrypts for an
    encrypted room), a redaction never encrypted, a room change (``ako.kick``, ``ako.leave``,
    ``ako.state``) as its request. A room change returns RoomChangeDone, having no event of its own."""
    c = item.content
    if item.event_type == "m.room.redaction":
        return await client.room_redact(item.room_id, c["redacts"], reason=c.get("reason"), tx_id=item.txn_id)
    if item.event_type == "ako.state":  # refused (403): recorded as undeliverable, with the reason
        resp = await client.room_put_state(item.room_id, c["type"], c["content"], state_key=c["state_key"])
        return resp if isinstance(resp, nio.ErrorResponse) else RoomChangeDone()
    if item.event_type in ("ako.kick", "ako.leave"):
        if item.event_type == "ako.kick":
            resp = await client.room_kick(item.room_id, c["user_id"], c.get("reason"))
        else:
            resp = await client.room_leave(item.room_id)
        if isinstance(resp, nio.ErrorResponse) and resp.status_code in ("M_FORBIDDEN", "M_NOT_FOUND"):
            # not (or no longer) there: nothing left to do
            log.info("%s in %s: nothing to do (%s %s)", item.event_type, item.room_id, resp.status_code, resp.message)
        elif isinstance(resp, nio.ErrorResponse):
            return resp
        return RoomChangeDone()
    return await send_message(item.room_id, item.event_type, canonical(item.content), item.txn_id)
