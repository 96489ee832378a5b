"""matrix-reminder-bot (PyPI, 0.4.x) as the reminder peer: its own process, config, account and
database, on the bench's homeserver A. Started and stopped by PID like the other bots.

It is found as the ``matrix-reminder-bot`` script beside this Python (``pip install -e '.[bench]'``
installs it), on PATH, or at ``$AKO_BENCH_PEER``; without it the figure says why it was not run.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PASSWORD = "peer-bench-password"


def find_peer() -> str | None:
    candidates = [os.environ.get("AKO_BENCH_PEER"), str(Path(sys.executable).parent / "matrix-reminder-bot"), shutil.which("matrix-reminder-bot")]
    return next((c for c in candidates if c and Path(c).is_file() and os.access(c, os.X_OK)), None)


def peer_version() -> str:
    try:
        from importlib.metadata import version

        return version("matrix-reminder-bot")
    except Exception:
        return "?"


def write_config(path: Path, hs: Any, user_id: str, data: Path) -> None:
    data.mkdir(parents=True, exist_ok=True)
    path.write_text(
        "command_prefix: \"!\"\n"
        "matrix:\n"
        f"  user_id: \"{user_id}\"\n"
        f"  user_password: \"{PASSWORD}\"\n"
        f"  homeserver_url: \"{hs.client_url}\"\n"
        "  device_id: BENCHPEER\n"
        "  device_name: bench-peer\n"
        "storage:\n"
        f"  database: \"sqlite://{data / 'bot.db'}\"\n"
        f"  store_path: \"{data / 'store'}\"\n"
        "reminders:\n"
        "  timezone: \"Etc/UTC\"\n"
        "allowlist:\n"
        "  enabled: false\n"
        "  regexes: []\n"
        "blocklist:\n"
        "  enabled: false\n"
        "  regexes: []\n"
        "logging:\n"
        "  level: INFO\n"
        "  file_logging:\n"
        "    enabled: false\n"
        f"    filepath: \"{data / 'bot.log'}\"\n"
        "  console_logging:\n"
        "    enabled: true\n"
    )


@dataclass
class PeerBot:
    executable: str
    hs: Any  # the bench's homeserver A (client_url, register)
    workdir: Path
    user_id: str = ""
    version: str = field(default_factory=peer_version)
    proc: subprocess.Popen | None = None

    @property
    def log_path(self) -> Path:
        return self.workdir / "peer.log"

    def start(self) -> None:
        self.user_id, _ = self.hs.register("reminderbot", PASSWORD)
        config = self.workdir / "config.yaml"
        write_config(config, self.hs, self.user_id, self.workdir / "data")
        with open(self.log_path, "ab") as out:
            # cwd: it writes nothing else, but keep it inside the work dir
            self.proc = subprocess.Popen([self.executable, str(config)], stdout=out, stderr=subprocess.STDOUT, cwd=self.workdir)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"matrix-reminder-bot exited with {self.proc.returncode}: {self.log_tail()}")
            if "Logged in" in self.log_path.read_text(errors="replace"):
                return
            time.sleep(0.2)
        raise RuntimeError(f"matrix-reminder-bot did not log in within 60 s: {self.log_tail()}")

    def log_tail(self, lines: int = 5) -> str:
        try:
            return " | ".join(self.log_path.read_text(errors="replace").strip().splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
