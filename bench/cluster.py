"""The benchmark's world: two federated homeservers, Ako and the echo bot as processes, and a
cluster of schools, staff, classes and learners set up through real commands."""

from __future__ import annotations

import asyncio
import sqlite3
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import commands
from devtools.homeserver import Homeserver, start_homeservers, stop_homeservers
from tests.botproc import BotProcess, write_bot_config

from .timed_user import TimedUser, gather_limited

PASSWORD = "ako-bench-password"


# --- what the learners type -------------------------------------------------------------------
# Each list is tried in order and the first command the bot declares is used, so a command that
# lands later is picked up by putting its line first.


@dataclass(frozen=True)
class Probe:
    command: str  # the declared name, as in commands/registry.py
    text: str  # what the learner types; {n} a counter, {code} the class code, {aid} the assignment
    expect: str  # the right answer contains this (anything else counts as an error)
    room: str = "work"  # where the learner types it: "work" (their work room) or "dm"

    def line(self, n: int = 0, code: str = "", aid: str = "A1") -> str:
        return self.text.format(n=n, code=code, aid=aid)


READ_PROBES = (
    Probe("assignments", "!assignments", "Assignments of"),
    Probe("classes", "!classes", "Your classes"),
)
WRITE_PROBES = (
    Probe("submit", "!submit {aid} Bench answer number {n}: the mitochondria is the powerhouse of the cell.", "Received"),
    Probe("join", "!join {code}", "already in"),
)
RUSH_PROBES = WRITE_PROBES[:1] + READ_PROBES
ASSIGNMENTS = ('"Essay"', '"Lab report"', '"Quiz"')  # set in every class when `assign new` exists


def pick(probes: tuple[Probe, ...]) -> Probe:
    registry = commands.load()
    for probe in probes:
        if registry.find(probe.command) is not None:
            return probe
    raise RuntimeError(f"None of the commands {[p.command for p in probes]} is declared")


def declared(name: str) -> bool:
    return commands.load().find(name) is not None


# --- processes -----------------------------------------------------------------------------


class EchoProcess(BotProcess):
    """bench/echo_bot.py as a process; reuses BotProcess's start/ready/stop by PID."""

    def __init__(self, hs: Homeserver, user_id: str, token: str, data_dir: Path):
        super().__init__(data_dir / "unused.toml", data_dir, ready_timeout=60, env={"AKO_ECHO_TOKEN": token})
        self.hs, self.user_id = hs, user_id

    def argv(self) -> list[str]:
        return [
            sys.executable, "-m", "bench.echo_bot",
            "--homeserver", self.hs.client_url, "--user-id", self.user_id, "--ready", str(self.ready_path),
        ]


def rss_mb(pid: int | None) -> dict[str, float]:
    """Resident memory now and at its peak (VmRSS, VmHWM) of a process, in MB."""
    out = {"rss_mb": float("nan"), "hwm_mb": float("nan")}
    if pid is None:
        return out
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                out["rss_mb" if key == "VmRSS" else "hwm_mb"] = round(int(value.split()[0]) / 1024, 1)
    except OSError:
        pass
    return out


# --- the world ------------------------------------------------------------------------------


@dataclass
class Klass:
    code: str
    name: str
    teacher: TimedUser
    learners: list["Learner"] = field(default_factory=list)


@dataclass
class Learner:
    user: TimedUser
    federated: bool  # on the server that is not the bot's
    klass: Klass
    dm: str
    work_room: str
    echo_room: str


@dataclass
class World:
    workdir: Path
    log: Callable[[str], None]
    encryption: bool | None = None  # None: the bot config's default
    servers: list[Homeserver] = field(default_factory=list)
    ako: BotProcess | None = None
    echo: EchoProcess | None = None
    ako_id: str = ""
    echo_id: str = ""
    ako_config: dict = field(default_factory=dict)
    operator: TimedUser | None = None
    admins: list[TimedUser] = field(default_factory=list)
    teachers: list[TimedUser] = field(default_factory=list)
    classes: list[Klass] = field(default_factory=list)
    users: list[TimedUser] = field(default_factory=list)
    _dms: dict[str, str] = field(default_factory=dict)
    _n: int = 0

    @property
    def hs_a(self) -> Homeserver:
        return self.servers[0]

    @property
    def hs_b(self) -> Homeserver:
        return self.servers[1]

    @property
    def ako_db(self) -> Path:
        return self.workdir / "ako" / "ako.db"

    def learners(self) -> list[Learner]:
        return [learner for k in self.classes for learner in k.learners]

    # --- start and stop

    async def start(self) -> None:
        self.servers = await asyncio.to_thread(start_homeservers, self.workdir / "hs", 2, log=self.log)
        self.ako_id, _ = await asyncio.to_thread(self.hs_a.register, "ako", PASSWORD)
        self.echo_id, echo_token = await asyncio.to_thread(self.hs_a.register, "echo", PASSWORD)
        operator_id = self.hs_a.user_id("it")
        data = self.workdir / "ako"
        overrides = {} if self.encryption is None else {"bot": {"encryption": self.encryption}}
        cfg = write_bot_config(self.workdir / "ako.toml", self.hs_a, self.ako_id, PASSWORD, [operator_id], data, **overrides)
        import tomllib

        self.ako_config = tomllib.loads(cfg.read_text())
        self.ako = BotProcess(cfg, data, ready_timeout=600)
        self.echo = EchoProcess(self.hs_a, self.echo_id, echo_token, self.workdir / "echo")
        await asyncio.gather(asyncio.to_thread(self.ako.start), asyncio.to_thread(self.echo.start))
        self.log(f"Ako (PID {self.ako.pid}) and the echo bot (PID {self.echo.pid}) are syncing")

    async def stop(self) -> None:
        for user in self.users:
            try:
                await user.close()
            except Exception:
                pass
        for proc in (self.ako, self.echo):
            if proc is not None and proc.is_running():
                await asyncio.to_thread(proc.stop, 10)
        if self.servers:
            await asyncio.to_thread(stop_homeservers, self.servers)

    # --- people

    async def user(self, hs: Homeserver, localpart: str) -> TimedUser:
        u = await TimedUser.create(hs, localpart, PASSWORD)
        self.users.append(u)
        return u

    async def dm_with_ako(self, user: TimedUser) -> str:
        if user.user_id not in self._dms:
            room = await user.dm(self.ako_id)
            await wait_joined(user, room, self.ako_id)
            self._dms[user.user_id] = room
        return self._dms[user.user_id]

    async def say(self, user: TimedUser, line: str, expect: str, timeout: float = 120) -> str:
        """A command in the user's DM with Ako; the answer must contain ``expect``."""
        reply = await user.command(await self.dm_with_ako(user), line, timeout=timeout)
        if expect not in reply["body"]:
            raise RuntimeError(f"{user.user_id}: {line!r} was answered {reply['body']!r}")
        return reply["body"]

    async def set_up_schools(self) -> None:
        """The operator registers both schools and their admins; each admin names a teacher."""
        a, b = self.hs_a, self.hs_b
        self.operator, admin_a, admin_b, teacher_a, teacher_b = await asyncio.gather(
            self.user(a, "it"), self.user(a, "admin"), self.user(b, "admin"), self.user(a, "teacher"), self.user(b, "teacher")
        )
        self.admins, self.teachers = [admin_a, admin_b], [teacher_a, teacher_b]
        for line in (
            f'!school add {a.server_name} "Kura A"',
            f'!school add {b.server_name} "Kura B"',
            f"!school admin {a.server_name} {admin_a.user_id}",
            f"!school admin {b.server_name} {admin_b.user_id}",
        ):
            await self.say(self.operator, line, "")
        await asyncio.gather(
            self.say(admin_a, f"!staff add {teacher_a.user_id}", "staff"),
            self.say(admin_b, f"!staff add {teacher_b.user_id}", "staff"),
        )

    async def new_class(self, teacher: TimedUser) -> Klass:
        number = len(self.classes) + 1
        klass = Klass(f"BENCH{number}", f"Bench class {number}", teacher)
        await self.say(teacher, f'!class new "{klass.name}" {klass.code}', klass.code)
        if declared("assign new"):
            for title in ASSIGNMENTS:
                await self.say(teacher, f"!assign new {klass.code} {title} due in 30 days points 20", "Posted")
        self.classes.append(klass)
        return klass

    async def add_learners(
        self, klass: Klass, count: int, *, by_teacher: bool = False, batch: int = 10, concurrency: int = 6
    ) -> list[Learner]:
        """``count`` new learners, every other one on the other server. They join by code in
        their DM with Ako (``!join``), or, ``by_teacher``, the teacher adds them ``batch`` at a
        time (``!class add``: no DMs, much quicker to set up). Each accepts the invitation to
        their work room and opens a room with the echo bot of the same shape (themselves, the
        bot, the teacher invited)."""
        t0 = time.monotonic()
        first = self._n
        self._n += count
        users = await gather_limited(
            concurrency,
            [self.user(self.hs_b if i % 2 else self.hs_a, f"learner{first + i + 1:04d}") for i in range(count)],
        )
        dms: dict[str, str | None] = {u.user_id: None for u in users}
        if by_teacher:
            for start in range(0, count, batch):
                group = " ".join(u.user_id for u in users[start : start + batch])
                await self.say(klass.teacher, f"!class add {klass.code} {group}", "added", timeout=900)

        async def one(user: TimedUser) -> Learner:
            if not by_teacher:
                dms[user.user_id] = await self.dm_with_ako(user)
                await self.say(user, f"!join {klass.code}", klass.name)
            work = await asyncio.to_thread(_work_room, self.ako_db, klass.code, user.user_id)
            await user.wait_invite(lambda inv: inv["room_id"] == work, timeout=300)
            await user.join(work)
            resp = await user.client.room_create(name=f"Echo of {user.user_id}", invite=[self.echo_id, klass.teacher.user_id])
            echo_room = getattr(resp, "room_id", None)
            if echo_room is None:
                raise RuntimeError(f"{user.user_id} could not create a room with the echo bot: {resp}")
            await wait_joined(user, echo_room, self.echo_id)
            return Learner(user, user.hs is self.hs_b, klass, dms[user.user_id] or "", work, echo_room)

        added = await gather_limited(concurrency, [one(u) for u in users])
        klass.learners.extend(added)
        how = "added by the teacher" if by_teacher else "joined by code"
        self.log(f"{count} learners {how} in {klass.code} in {time.monotonic() - t0:.0f} s")
        return added

    def joined_rooms(self) -> int:
        """Rooms the bot has recorded itself joined to (its own database)."""
        with _ro(self.ako_db) as con:
            return con.execute("SELECT count(*) FROM joined_rooms").fetchone()[0]


async def wait_joined(user: TimedUser, room_id: str, member: str, timeout: float = 120) -> None:
    await user.wait_for(
        room_id,
        lambda e: e["type"] == "m.room.member" and e["state_key"] == member and e["content"]["membership"] == "join",
        timeout=timeout,
        since=0,
    )


class _ro:
    """A read-only connection to the bot's database (WAL: safe while the bot writes)."""

    def __init__(self, path: Path):
        self.path = path

    def __enter__(self) -> sqlite3.Connection:
        self.con = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=30)
        return self.con

    def __exit__(self, *exc) -> None:
        self.con.close()


def _work_room(db: Path, code: str, user_id: str) -> str:
    with _ro(db) as con:
        row = con.execute(
            "SELECT r.room_id FROM rooms r JOIN classes c ON c.id = r.class_id "
            "WHERE c.code = ? COLLATE NOCASE AND r.kind = 'work' AND r.owner = ?",
            (code, user_id),
        ).fetchone()
    if row is None:
        raise RuntimeError(f"Ako recorded no work room for {user_id} in {code}")
    return row[0]
