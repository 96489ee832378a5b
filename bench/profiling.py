"""Sampling profiles of the running bot with py-spy (optional: ``pip install -e '.[bench]'``).

py-spy attaches to Ako's PID without changing it (``--nonblocking``: the bot is not paused to
be sampled). Each profile is written as collapsed stacks to the work dir and summarised: where
the samples were (self time), and which of Ako's own functions they passed through.
"""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path

_FRAME = re.compile(r"^(?P<func>.*) \((?P<file>[^():]*):(?P<line>\d+)\)$")
REPO = str(Path(__file__).resolve().parent.parent) + "/"
OWN = (" (bot/", " (commands/", " (storage/", " (" + REPO)
ENTRY = ("(bot/__main__.py", "(bot/cli.py")  # on every stack: not worth listing
# Leaf frames of a thread waiting for work: the event loop's poll, aiosqlite's queue.
IDLE = ("EpollSelector.select (", "_connection_worker_thread (aiosqlite/core.py:59)", "Condition.wait (", "Queue.get (")


class Profiler:
    def __init__(self, outdir: Path, enabled: bool, log=print):
        self.outdir = outdir
        self.log = log
        self.exe = shutil.which("py-spy") if enabled else None
        if enabled and not self.exe:
            log("--profile: py-spy is not installed (pip install -e '.[bench]'); no profiles")
        self.summaries: dict[str, dict] = {}

    def start(self, name: str, pid: int | None) -> tuple[str, subprocess.Popen, Path] | None:
        if not self.exe or pid is None:
            return None
        self.outdir.mkdir(parents=True, exist_ok=True)
        out = self.outdir / f"profile-{name}.txt"
        proc = subprocess.Popen(
            [self.exe, "record", "--pid", str(pid), "--rate", "250", "--format", "raw", "--nonblocking", "-o", str(out)],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )
        time.sleep(0.3)
        if proc.poll() is not None:
            self.log(f"py-spy could not attach to PID {pid}: {proc.stderr.read().decode(errors='replace')[-300:]}")
            return None
        return name, proc, out

    def stop(self, handle) -> dict | None:
        if handle is None:
            return None
        name, proc, out = handle
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if not out.exists():
            self.log(f"py-spy wrote no profile for {name}")
            return None
        summary = summarise(out)
        self.summaries[name] = summary
        return summary


def summarise(path: Path, top: int = 12) -> dict:
    """Self time by leaf frame, and inclusive time of the bot's own functions, as shares of the
    busy samples (a thread waiting in the event loop's poll or aiosqlite's queue is idle)."""
    leaf: Counter = Counter()
    own: Counter = Counter()
    total = idle = 0
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        frames = stack.split(";")
        if any(frames[-1].startswith(i) or frames[-1] == i for i in IDLE):
            idle += n
            continue
        total += n
        leaf[_short(frames[-1])] += n
        for f in {_short(f, line=False) for f in frames if any(o in f for o in OWN) and not any(e in f for e in ENTRY)}:
            own[f] += n
    share = lambda c: [(f, round(100 * k / total, 1)) for f, k in c.most_common(top)] if total else []  # noqa: E731
    return {"file": str(path), "samples": total, "idle_samples": idle, "self": share(leaf), "own_inclusive": share(own)}


def _short(frame: str, line: bool = True) -> str:
    m = _FRAME.match(frame.strip())
    if not m:
        return frame.strip()
    file = re.sub(r"^.*/(site-packages|lib/python3\.\d+)/", "", m["file"]).replace(REPO, "")
    return f"{m['func']} ({file}:{m['line']})" if line else f"{m['func']} ({file})"
