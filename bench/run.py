"""Ako's benchmark, in one command (issue 7):

    python -m bench.run [--quick]

Starts two federated Synapse homeservers on loopback, the echo bot (bench/echo_bot.py) and
Ako as separate processes, and real users; measures round trips, a deadline rush, Ako at
scale, scheduled reminders and the gradebook export; prints a table and writes
bench/results.json (bench/results-quick.json with --quick) and, with matplotlib, a PNG of the
scaling curve. Every figure that depends on the machine is given as a ratio against the echo
bot measured in the same run. Everything it starts it stops, by PID; all traffic is to
127.0.0.1. See bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import platform
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from datetime import datetime, timezone
from pathlib import Path

from .cluster import READ_PROBES, RUSH_PROBES, WRITE_PROBES, Learner, Probe, World, pick, rss_mb
from .profiling import Profiler
from .report import chart, goals, table
from .stats import Summary, percentile, ratio
from .timed_user import Sample

HERE = Path(__file__).resolve().parent


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", flush=True)


class Budget:
    """The run's time limit: phases ask before starting, loops before each step."""

    def __init__(self, minutes: float):
        self.end = time.monotonic() + minutes * 60

    def left(self) -> float:
        return self.end - time.monotonic()

    def allows(self, seconds: float = 0) -> bool:
        return self.left() > seconds


# --- 1. round trips ---------------------------------------------------------------------------


async def interleaved(learner: Learner, kinds: dict[str, tuple[str, callable]], n: int, budget: Budget, warmup: int = 3) -> dict[str, list[Sample]]:
    """``n`` round trips of each kind, in rotating order so that noise hits every kind alike.
    ``kinds``: label → (room, text for the i-th go)."""
    labels = list(kinds)
    out: dict[str, list[Sample]] = {k: [] for k in labels}
    for i in range(-warmup, n):
        if not budget.allows(30):
            log(f"time limit: stopping round trips after {i} of {n}")
            break
        shift = i % len(labels)
        for label in labels[shift:] + labels[:shift]:
            room, text = kinds[label]
            s = await learner.user.timed(room, text(i), timeout=60)
            if i >= 0:
                out[label].append(s)
    return out


def summarise(samples: list[Sample], expect: str) -> tuple[Summary, int]:
    answered = [s for s in samples if s.latency is not None]
    errors = sum(1 for s in samples if s.latency is None or expect not in s.body)
    return Summary.of([s.latency for s in answered]), errors


async def round_trips(world: World, read: Probe, write: Probe, n: int, budget: Budget) -> list[dict]:
    rows = []
    firsts = world.classes[0].learners
    for learner in (next(l for l in firsts if not l.federated), next(l for l in firsts if l.federated)):
        where = "federated" if learner.federated else "same server"
        code = learner.klass.code
        kinds = {
            "echo": (learner.echo_room, lambda i: "!ping"),
            "read": (learner.work_room, lambda i: read.line(i, code)),
            "write": (learner.work_room, lambda i: write.line(i, code)),
        }
        t0 = time.monotonic()
        got = await interleaved(learner, kinds, n, budget)
        echo, _ = summarise(got["echo"], "pong")
        for label, probe in (("read", read), ("write", write)):
            s, errors = summarise(got[label], probe.expect)
            rows.append({
                "command": "!" + probe.command, "kind": label, "where": where, "n": s.n, "errors": errors,
                "median_ms": s.median_ms, "p95_ms": s.p95_ms, "p99_ms": s.p99_ms,
                "echo_n": echo.n, "echo_median_ms": echo.median_ms, "echo_p95_ms": echo.p95_ms,
                "ratio_median": round(ratio(s.median_ms, echo.median_ms), 3),
                "ratio_p95": round(ratio(s.p95_ms, echo.p95_ms), 3),
            })
            if errors:
                bad = next((x.body for x in got[label] if probe.expect not in x.body), "(no answer)")
                log(f"{label} ({where}): {errors} answers without {probe.expect!r}, e.g. {bad[:200]!r}")
        log(f"round trips ({where}): {time.monotonic() - t0:.0f} s")
    return rows


# --- 2. deadline rush ------------------------------------------------------------------------


async def burst(learners: list[Learner], who: str, probe: Probe, window: float, seed: int, timeout: float) -> dict:
    rng = random.Random(seed)
    offsets = [rng.uniform(0, window) for _ in learners]
    start = time.monotonic() + 1.0

    async def one(i: int, learner: Learner) -> tuple[str, Sample | None]:
        room = learner.echo_room if who == "echo" else learner.work_room
        text = "!ping" if who == "echo" else probe.line(i, learner.klass.code)
        await asyncio.sleep(max(0.0, start + offsets[i] - time.monotonic()))
        mark = learner.user.mark(room)
        try:
            sample = await learner.user.send_timed(room, text)
        except Exception as e:  # a refused send is a failure of the run, counted, not fatal
            log(f"{who} rush: {learner.user.user_id} could not send: {e}")
            return room, None
        return room, await learner.user.await_reply(room, sample, timeout, since=mark)

    lag = LoopLag()
    cpu = time.process_time()
    async with lag:
        results = await asyncio.gather(*(one(i, l) for i, l in enumerate(learners)))
    cpu = time.process_time() - cpu
    await asyncio.sleep(3)  # room for a late duplicate to show up
    expect = "pong" if who == "echo" else probe.expect
    samples = [s for _, s in results if s is not None]
    answered = [s for s in samples if s.latency is not None]
    duplicates = sum(max(0, l.user.count_replies(room, s.sent_id) - 1) for l, (room, s) in zip(learners, results) if s is not None)
    summary = Summary.of([s.latency for s in answered])
    span = (max(s.sent_at + s.latency for s in answered) - min(s.sent_at for s in samples)) if answered else math.nan
    errors = sum(1 for s in answered if expect not in s.body)
    if errors:
        log(f"{who} rush: {errors} wrong answers, e.g. {next(s.body for s in answered if expect not in s.body)[:200]!r}")
    return {
        "answered": len(answered), "errors": errors, "unsent": len(learners) - len(samples), "duplicates": duplicates,
        "median_ms": summary.median_ms, "p95_ms": summary.p95_ms, "max_ms": summary.max_ms,
        "span_s": round(span, 2), "per_s": round(len(answered) / span, 2) if span else math.nan,
        "latencies_s": [round(s.latency, 3) for s in answered],
        # the harness itself: its CPU time, and how late its event loop woke (if it lagged by
        # seconds, the figures measure the harness, not the bots)
        "harness_cpu_s": round(cpu, 1), "harness_lag_p95_ms": lag.p95_ms(), "harness_lag_max_ms": lag.max_ms(),
    }


class LoopLag:
    """How late this process's event loop runs a 50 ms timer, while in the ``async with``."""

    def __init__(self, every: float = 0.05):
        self.every = every
        self.lags: list[float] = []
        self._task: asyncio.Task | None = None

    async def _tick(self) -> None:
        while True:
            t = time.monotonic()
            await asyncio.sleep(self.every)
            self.lags.append(time.monotonic() - t - self.every)

    async def __aenter__(self) -> "LoopLag":
        self._task = asyncio.create_task(self._tick())
        return self

    async def __aexit__(self, *exc) -> None:
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)

    def p95_ms(self) -> float:
        return round(percentile(self.lags, 95) * 1000, 1)

    def max_ms(self) -> float:
        return round(max(self.lags, default=math.nan) * 1000, 1)


async def rush(world: World, probe: Probe, read: Probe, learners_total: int, window: float, budget: Budget, profiler: Profiler) -> dict:
    per_class = max(2, learners_total // 3)
    while len(world.classes) < 3:
        await world.new_class(world.teachers[len(world.classes) % 2])
    t0 = time.monotonic()
    for klass in world.classes[:3]:
        need = per_class - len(klass.learners)
        if need > 0:
            if not budget.allows(60 + need * 4):
                return {"skipped": f"time limit reached while adding learners to {klass.code}"}
            await world.add_learners(klass, need, by_teacher=True)
    setup_s = time.monotonic() - t0
    learners = [l for k in world.classes[:3] for l in k.learners]
    # Warm up: every learner's rooms are used once, a few at a time, and the set-up's
    # federation traffic settles, so that neither burst pays for cold caches.
    from .timed_user import gather_limited

    await gather_limited(4, [l.user.timed(l.echo_room, "!ping", timeout=120) for l in learners])
    await gather_limited(4, [l.user.timed(l.work_room, read.line(0, l.klass.code), timeout=120) for l in learners])
    await asyncio.sleep(3)
    log(f"rush: {len(learners)} learners ({sum(l.federated for l in learners)} on the other server); echo, Ako, echo again")
    echo1 = await burst(learners, "echo", probe, window, seed=7, timeout=120)
    await asyncio.sleep(3)
    handle = profiler.start("rush", world.ako.pid)
    ako = await burst(learners, "ako", probe, window, seed=7, timeout=120)
    profiler.stop(handle)
    await asyncio.sleep(3)
    echo2 = await burst(learners, "echo", probe, window, seed=7, timeout=120)
    # the echo figure: both echo bursts (before and after Ako's) pooled, so drift hits both sides
    pooled = echo1["latencies_s"] + echo2["latencies_s"]
    both = Summary.of(pooled)
    echo = {
        "answered": min(echo1["answered"], echo2["answered"]), "errors": echo1["errors"] + echo2["errors"],
        "duplicates": echo1["duplicates"] + echo2["duplicates"],
        "median_ms": both.median_ms, "p95_ms": both.p95_ms, "max_ms": both.max_ms,
        "per_s": round((echo1["per_s"] + echo2["per_s"]) / 2, 2),
    }
    return {
        "learners": len(learners), "classes": 3, "window_s": window, "command": probe.line(0, "CODE"),
        "setup_s": round(setup_s), "echo": echo, "echo_first": echo1, "echo_after": echo2, "ako": ako,
        "ratio_p95": round(ratio(ako["p95_ms"], echo["p95_ms"]), 3),
        "ratio_median": round(ratio(ako["median_ms"], echo["median_ms"]), 3),
        "ratio_rate": round(ratio(ako["per_s"], echo["per_s"]), 3),  # receipts a second, Ako's ÷ echo's
    }


# --- 3. scale --------------------------------------------------------------------------------


async def _restart(world: World, user, room: str, line: str, profiler: Profiler, profile_as: str | None) -> tuple[float, float]:
    """Start the stopped Ako with a command waiting for it; seconds to ready and to its reply."""
    mark = user.mark(room)
    sample = await user.send_timed(room, line)  # sent while Ako is down
    t0 = time.monotonic()
    handle = None
    start = asyncio.create_task(asyncio.to_thread(world.ako.start))
    if profile_as:  # attach as soon as the process is up
        for _ in range(100):
            await asyncio.sleep(0.05)
            if world.ako.pid is not None and world.ako.is_running():
                break
        await asyncio.sleep(0.3)
        handle = profiler.start(profile_as, world.ako.pid)
    await start
    ready = time.monotonic() - t0
    await user.await_reply(room, sample, timeout=300, since=mark)
    profiler.stop(handle)
    first = (sample.sent_at + sample.latency - t0) if sample.latency is not None else math.nan
    return ready, first


async def scale_point(world: World, filler, read: Probe, n: int, budget: Budget, profiler: Profiler, profile_restart: bool) -> dict:
    learner = next(l for l in world.classes[0].learners if not l.federated)
    user, room, code = learner.user, learner.work_room, learner.klass.code
    await user.timed(room, read.line(0, code), timeout=300)  # Ako has caught up with every room so far
    rooms = await asyncio.to_thread(world.joined_rooms)
    running = rss_mb(world.ako.pid)
    t = time.monotonic()
    await asyncio.to_thread(world.ako.stop, 10)
    stopped_in = time.monotonic() - t
    written = await asyncio.to_thread(filler.write_rows) if filler else 0
    settled = None
    if written:  # as a running deployment has them: written into their rooms (bench/scale.py)
        settled = await filler.written_into_rooms(lambda: user.timed(room, read.line(0, code), timeout=300))
    log(f"scale: {rooms} rooms; Ako stopped in {stopped_in:.1f} s; {written} filler classes recorded; restarting")

    ready, first = await _restart(world, user, room, read.line(0, code), profiler, f"restart-{rooms}" if profile_restart else None)
    after_restart = rss_mb(world.ako.pid)
    # the same restart again at once: what the first one did only once (records written into the
    # rooms, keys fetched) shows as the difference
    await asyncio.to_thread(world.ako.stop, 10)
    ready_again, first_again = await _restart(world, user, room, read.line(0, code), profiler, f"restart-again-{rooms}" if profile_restart else None)
    log(f"scale: {rooms} rooms: restart to first reply {first:.1f} s, at once again {first_again:.1f} s")
    got = await interleaved(learner, {
        "echo": (learner.echo_room, lambda i: "!ping"),
        "read": (room, lambda i: read.line(i, code)),
    }, n, budget, warmup=2)
    ako, errors = summarise(got["read"], read.expect)
    echo, _ = summarise(got["echo"], "pong")
    after = rss_mb(world.ako.pid)
    point = {
        "rooms": rooms, "stop_s": round(stopped_in, 1), "restart_to_ready_s": round(ready, 2),
        "restart_to_first_reply_s": round(first, 2),
        "restart_again_to_ready_s": round(ready_again, 2), "restart_again_to_first_reply_s": round(first_again, 2),
        "filler_records": settled,
        "rss_running_mb": running["rss_mb"], "rss_after_mb": after["rss_mb"], "rss_after_restart_mb": after_restart["rss_mb"],
        "hwm_mb": max(running["hwm_mb"], after_restart["hwm_mb"], after["hwm_mb"]), "hwm_again_mb": after["hwm_mb"],
        "n": ako.n, "errors": errors, "median_ms": ako.median_ms, "p95_ms": ako.p95_ms,
        "echo_median_ms": echo.median_ms, "echo_p95_ms": echo.p95_ms,
        "ratio_to_echo": round(ratio(ako.median_ms, echo.median_ms), 3),
    }
    log(f"scale: {rooms} rooms: first reply {first:.1f} s after start, RSS {after['rss_mb']} MB, {ako.median_ms:.0f} ms vs echo {echo.median_ms:.0f} ms")
    return point


# --- 4. reminders ----------------------------------------------------------------------------


async def reminders(world: World, count: int, budget: Budget, profiler: Profiler) -> dict:
    from .reminders import due_in_one_minute

    return await due_in_one_minute(world, count, budget, log, profiler)


async def peer_reminders(world: World, count: int, workdir: Path) -> dict:
    """``count`` reminders due at once to Ako and to matrix-reminder-bot (bench/peer.py)."""
    from .peer import PeerBot, find_peer
    from .reminders import ten_at_once

    executable = find_peer()
    if executable is None:
        return {"why_not": "matrix-reminder-bot is not installed here: pip install -e '.[bench]' (or pip install matrix-reminder-bot; "
                           "or name its script in AKO_BENCH_PEER)"}
    peer = PeerBot(executable, world.hs_a, workdir / "peer")
    peer.workdir.mkdir(parents=True, exist_ok=True)
    try:
        await asyncio.to_thread(peer.start)
        return await ten_at_once(world, peer, count, log)
    finally:
        await asyncio.to_thread(peer.stop)


# --- 5. handled events: memory and database size ------------------------------------------------


async def steady(world: World, total: int, read: Probe, budget: Budget, minutes: float) -> dict:
    from .steady import handled_events

    return await handled_events(world, total, lambda l: read.line(0, l.klass.code), read.expect, budget, log, minutes=minutes)


# --- the run ---------------------------------------------------------------------------------


def machine() -> dict:
    def run(*cmd):
        try:
            return subprocess.run(cmd, capture_output=True, text=True, timeout=10).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return ""

    mem = run("free", "-h").splitlines()
    total = mem[1].split()[1] if len(mem) > 1 else "?"
    load = os.getloadavg()
    versions = {"python": platform.python_version()}
    for pkg in ("matrix-synapse", "matrix-nio"):
        try:
            from importlib.metadata import version

            versions[pkg] = version(pkg)
        except Exception:
            pass
    return {
        "nproc": os.cpu_count(), "memory": total, "load_at_start": [round(x, 2) for x in load],
        "summary": f"{os.cpu_count()} cores, {total} RAM, load {load[0]:.1f} at start", "versions": versions,
        "free_h": run("free", "-h"),
    }


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.run", description="Ako's benchmark against a do-nothing echo bot (issue 7).")
    p.add_argument("--quick", action="store_true", help="fewer samples, learners and rooms (a few minutes)")
    p.add_argument("--n", type=int, help="round trips per command and server (default 100; quick 20)")
    p.add_argument("--learners", type=int, help="learners in the deadline rush (default 90; quick 30)")
    p.add_argument("--window", type=float, default=10.0, help="seconds the rush is spread over (default 10)")
    p.add_argument("--rooms", help="scale targets, comma-separated (default 100,1000; quick 100); add 3200 if time allows")
    p.add_argument("--scale-n", type=int, help="round trips at each scale point (default 30; quick 10)")
    p.add_argument("--reminders", type=int, help="reminders due in the same minute (default 1000; quick 200)")
    p.add_argument("--peer-reminders", type=int, default=10, help="reminders due at once, to Ako and to matrix-reminder-bot (default 10)")
    p.add_argument("--steady-minutes", type=float, default=20.0, help="longest the handled-events phase may take (default 20; 100,000 events take ~60 min at Synapse's pace here)")
    p.add_argument("--events", type=int, help="ordinary handled events for the memory and database figure (default 100000; quick 3000)")
    p.add_argument("--gradebook", default=None, help="LEARNERSxASSIGNMENTS for the export (default 1000x50)")
    p.add_argument("--skip", default="", help="phases to leave out: roundtrip,rush,scale,reminders,peer,steady,gradebook")
    p.add_argument("--encryption", choices=("default", "on", "off"), default="default", help="Ako's bot.encryption (default: as tests/botproc.py writes it)")
    p.add_argument("--profile", action="store_true", help="py-spy profiles of Ako during the round trips, the rush and the largest restart")
    p.add_argument("--time-limit", type=float, help="minutes for the whole run (default 75; quick 20); phases past it are skipped or cut short")
    p.add_argument("--workdir", type=Path, help="where homeservers and bots keep their state (default: a new temporary folder)")
    p.add_argument("--keep", action="store_true", help="keep the work dir (it is always kept when the run fails)")
    p.add_argument("--out", type=Path, help="results JSON (default bench/results.json; quick bench/results-quick.json)")
    a = p.parse_args(argv)
    q = a.quick
    a.n = a.n or (20 if q else 100)
    a.learners = a.learners or (30 if q else 90)
    a.scale_n = a.scale_n or (10 if q else 30)
    a.reminders = a.reminders if a.reminders is not None else (200 if q else 1000)
    a.rooms = [int(x) for x in (a.rooms or ("100" if q else "100,1000")).split(",") if x.strip()]
    a.gradebook = a.gradebook or "1000x50"
    a.events = a.events if a.events is not None else (3000 if q else 100_000)
    a.time_limit = a.time_limit or (20 if q else 75)
    a.skip = {s.strip() for s in a.skip.split(",") if s.strip()}
    a.out = a.out or HERE / ("results-quick.json" if q else "results.json")
    return a


async def bench(args, workdir: Path, results: dict) -> None:
    budget = Budget(args.time_limit)
    profiler = Profiler(workdir / "profiles", args.profile, log)
    enc = {"default": None, "on": True, "off": False}[args.encryption]
    world = World(workdir, log, encryption=enc)
    read, write, rush_probe = pick(READ_PROBES), pick(WRITE_PROBES), pick(RUSH_PROBES)
    results["commands"] = {"read": read.text, "write": write.text, "rush": rush_probe.text}
    filler = None

    async def guarded(name: str, coro):
        """A phase that fails is reported and the run goes on with the next."""
        try:
            return await coro
        except Exception as e:
            log(f"{name} failed: {type(e).__name__}: {e}")
            with open(workdir / "errors.txt", "a") as f:
                traceback.print_exc(file=f)
            results.setdefault("errors", {})[name] = f"{type(e).__name__}: {e}"[:1000]
            return {"skipped": f"failed: {type(e).__name__}: {str(e)[:200]}"}

    try:
        t0 = time.monotonic()
        await world.start()
        results["encryption"] = world.ako_config.get("bot", {}).get("encryption")
        await world.set_up_schools()
        klass = await world.new_class(world.teachers[0])
        await world.add_learners(klass, 2)  # one on the bot's server, one across federation
        log(f"set-up: {time.monotonic() - t0:.0f} s; Ako is in {world.joined_rooms()} rooms")

        if "roundtrip" not in args.skip:
            handle = profiler.start("round-trips", world.ako.pid)
            rows = await guarded("roundtrip", round_trips(world, read, write, args.n, budget))
            profiler.stop(handle)
            results["round_trip"] = rows if isinstance(rows, list) else []

        targets = sorted(args.rooms)

        async def measure_point(fill, profile_restart: bool) -> None:
            point = await guarded("scale", scale_point(world, fill, read, args.scale_n, budget, profiler, profile_restart))
            if "skipped" in point:
                if not world.ako.is_running():
                    await asyncio.to_thread(world.ako.start)
            else:
                results["scale"].append(point)

        if "scale" not in args.skip:
            from .scale import Filler

            filler = Filler(world, log)
            await filler.open()
            results["scale"] = []
            await measure_point(None, False)

        async def scale_up_to(limit: int) -> None:
            while targets and targets[0] <= limit:
                target = targets.pop(0)
                if not budget.allows(120 + target * 0.4):
                    log(f"time limit: no scale point at {target} rooms")
                    results.setdefault("scale_skipped", []).append(target)
                    continue
                await filler.grow_to(target, deadline=time.monotonic() + budget.left() - 120)
                last = not targets
                await measure_point(filler, args.profile and last)

        if "scale" not in args.skip:
            await scale_up_to(100)

        if "rush" not in args.skip:
            if budget.allows(180):
                results["rush"] = await guarded("rush", rush(world, rush_probe, read, args.learners, args.window, budget, profiler))
            else:
                results["rush"] = {"skipped": "time limit"}

        if "scale" not in args.skip:
            await scale_up_to(10**9)
            if results.get("scale"):
                base = results["scale"][0]
                for p in results["scale"]:
                    p["ratio_vs_empty"] = round(ratio(p["ratio_to_echo"], base["ratio_to_echo"]), 3)
                    p["ratio_vs_empty_raw"] = round(ratio(p["median_ms"], base["median_ms"]), 3)
                results["filler"] = {"created": filler.created, "seconds": round(filler.seconds, 1)}

        if "peer" not in args.skip:
            if budget.allows(240):
                results["peer_reminders"] = await guarded("peer", peer_reminders(world, args.peer_reminders, workdir))
            else:
                results["peer_reminders"] = {"skipped": "time limit"}

        if "reminders" not in args.skip:
            if budget.allows(240):
                results["reminders"] = await guarded("reminders", reminders(world, args.reminders, budget, profiler))
            else:
                results["reminders"] = {"skipped": "time limit"}

        if "steady" not in args.skip:
            if budget.allows(180):
                results["retention"] = await guarded("steady", steady(world, args.events, read, budget, args.steady_minutes))
            else:
                results["retention"] = {"skipped": "time limit"}
    finally:
        if filler is not None:
            await filler.close()
        results["bot_log_errors"] = _errors_in(world.ako.log_text() if world.ako else "")
        await world.stop()
        results["profiles"] = profiler.summaries


def _errors_in(text: str) -> list[str]:
    return [line for line in text.splitlines() if " ERROR " in line or "Traceback" in line][:20]


def main(argv=None) -> int:
    args = parse_args(argv)
    temporary = args.workdir is None
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="ako-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    results: dict = {
        "date": datetime.now(timezone.utc).astimezone().isoformat(timespec="seconds"),
        "mode": "quick" if args.quick else "full",
        "argv": sys.argv[1:] if argv is None else argv,
        "machine": machine(),
    }
    log(f"work dir {workdir}; {results['machine']['summary']}")
    ok = False
    t0 = time.monotonic()
    try:
        asyncio.run(bench(args, workdir, results))
        if "gradebook" not in args.skip:
            from .gradebook import export_grades

            learners, assignments = (int(x) for x in args.gradebook.lower().split("x"))
            log(f"gradebook: {learners} learners × {assignments} assignments")
            try:
                results["gradebook"] = asyncio.run(export_grades(learners, assignments, workdir=workdir))
            except Exception as e:
                log(f"gradebook failed: {type(e).__name__}: {e}")
                results["gradebook"] = {"skipped": f"failed: {type(e).__name__}: {str(e)[:200]}"}
        ok = True
    except KeyboardInterrupt:
        log("interrupted")
    except Exception:
        traceback.print_exc()
        log("the run failed; what was measured so far is below")
    finally:
        results["seconds"] = round(time.monotonic() - t0)
        results["goals"] = goals(results)
        args.out.write_text(json.dumps(_clean(results), indent=2) + "\n")
        png = args.out.with_name(args.out.stem.replace("results", "scaling") + ".png")
        why_not = chart(results, png)
        print()
        print(table(results))
        print()
        log(f"wrote {args.out}" + (f" and {png}" if why_not is None else f" (no chart: {why_not})") + f" in {results['seconds']} s")
        if ok and temporary and not args.keep and not args.profile:
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            log(f"state and logs kept in {workdir}")
    return 0 if ok else 1


def _clean(v):
    """JSON has no NaN: an unmeasured figure is null."""
    if isinstance(v, float) and math.isnan(v):
        return None
    if isinstance(v, dict):
        return {k: _clean(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_clean(x) for x in v]
    if isinstance(v, Path):
        return str(v)
    return v


def _exit(code: int) -> None:
    """Exit even if a library left a non-daemon thread behind (aiosqlite's worker thread of a
    database whose opening failed keeps the interpreter alive): everything the run started has
    been stopped by now."""
    sys.stdout.flush()
    sys.stderr.flush()
    if any(t.is_alive() and not t.daemon for t in threading.enumerate() if t is not threading.main_thread()):
        os._exit(code)
    sys.exit(code)


if __name__ == "__main__":
    _exit(main())
