"""Run the bot as a real subprocess (``python -m bot run --config ...``) and write its config.

With faults to inject (``crash_at``, ``fail_command``) it runs as ``python -m devtools.faulty_bot``
instead: the same Ako, with a hook at its named fault points."""

from __future__ import annotations

import atexit
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from devtools import bot_config
from devtools.homeserver import Homeserver

REPO_ROOT = Path(__file__).resolve().parent.parent
READY_FILE = "ako.ready"
LOG_FILE = "bot.log"

_running: set["BotProcess"] = set()


@atexit.register
def _kill_leftovers() -> None:
    """A test that forgot to stop its bot must not leave it running."""
    for bot in list(_running):
        bot.kill()


class BotProcess:
    def __init__(self, config_path: Path, data_dir: Path, *, ready_timeout: float = 60, env: dict | None = None):
        self.config_path = Path(config_path)
        self.data_dir = Path(data_dir)
        self.ready_timeout = ready_timeout
        self.extra_env = dict(env or {})
        self.crash_at: str | None = None  # a fault point, "<point>[:<n>]": SIGKILL there (bot/fault_points.py)
        self.fail_command: str | None = None  # that command's handler raises
        self.process: subprocess.Popen | None = None

    @property
    def log_path(self) -> Path:
        return self.data_dir / LOG_FILE

    @property
    def ready_path(self) -> Path:
        return self.data_dir / READY_FILE

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def is_running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def argv(self) -> list[str]:
        run = ["run", "--config", str(self.config_path)]
        faults = [*(["--crash-at", self.crash_at] if self.crash_at else []), *(["--fail-command", self.fail_command] if self.fail_command else [])]
        if faults:
            return [sys.executable, "-m", "devtools.faulty_bot", *faults, *run]
        return [sys.executable, "-m", "bot", *run]

    def start(self) -> "BotProcess":
        """Launch the bot and wait until it has written ``<data_dir>/ako.ready``."""
        if self.is_running():
            raise RuntimeError(f"bot already running (PID {self.process.pid})")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        try:  # the bot removes it too; removing it here closes the stale-file race
            self.ready_path.unlink()
        except FileNotFoundError:
            pass
        env = os.environ.copy()
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
        env["PYTHONUNBUFFERED"] = "1"
        env.update(self.extra_env)
        with open(self.log_path, "ab") as log:
            log.write(f"\n==== start {time.strftime('%H:%M:%S')} ====\n".encode())
            log.flush()
            self.process = subprocess.Popen(
                self.argv(),
                cwd=REPO_ROOT,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
            )
        _running.add(self)
        deadline = time.monotonic() + self.ready_timeout
        while not self.ready_path.exists():
            code = self.process.poll()
            if code is not None:
                raise RuntimeError(f"bot exited with code {code} before it was ready\n{self.log_tail()}")
            if time.monotonic() > deadline:
                self.kill()
                raise RuntimeError(f"bot not ready after {self.ready_timeout:.0f}s\n{self.log_tail()}")
            time.sleep(0.05)
        return self

    def kill(self) -> None:
        """SIGKILL (a crash, as far as the bot can tell) and reap."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
        self.process.wait()
        _running.discard(self)

    def stop(self, timeout: float = 15) -> int | None:
        """SIGTERM, wait up to ``timeout`` s, then SIGKILL. Returns the exit code."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.send_signal(signal.SIGKILL)
                self.process.wait()
        _running.discard(self)
        return self.process.returncode

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, lines: int = 60) -> str:
        text = self.log_text()
        return "\n".join(text.splitlines()[-lines:]) if text else f"(no output in {self.log_path})"

    def __enter__(self) -> "BotProcess":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


# ---------------------------------------------------------------------- config


# The product's defaults, but for one: the bot's work and staff rooms stay unencrypted here so that
# plain (unencrypted) test users can read them; tests/e2e/test_encryption.py runs a bot with it on.
TEST_DEFAULTS = {"bot": {"encrypt_work_rooms": False}}


def write_bot_config(
    path: Path,
    hs: Homeserver,
    bot_user_id: str,
    bot_password: str,
    operators: list[str],
    data_dir: Path,
    **overrides: dict[str, Any],
) -> Path:
    """Write the bot's TOML config. ``overrides`` are ``section={key: value}``, merged
    over the defaults (new sections/keys allowed; a value of None removes a key)."""
    return bot_config.write_bot_config(
        path, hs.client_url, bot_user_id, bot_password, operators, data_dir, defaults=TEST_DEFAULTS, **overrides
    )
