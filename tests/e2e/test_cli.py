"""`ako check` and `ako dev` as a person runs them: the real command, real homeservers.

`ako check` (SPEC §5, README "Running it for real") validates the config, reaches the homeserver
and logs in, then exits; each way it can fail is one clear sentence naming the problem, a non-zero
exit and no traceback. `ako dev` (README "The two commands") starts two federated homeservers,
the bot and demo accounts; a learner on school B joins the demo class with `!join DEMO1`; Ctrl-C
stops everything; a second start reuses the accounts.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from devtools.homeserver import PID_FILE, STATE_FILE, free_ports, load_state
from tests.botproc import write_bot_config
from tests.matrix_user import MatrixUser, unique_localpart

from .helpers import open_dm

REPO_ROOT = Path(__file__).resolve().parents[2]
DEV_PASSWORD = "ako-dev-password"  # README: every demo account's password


def _env() -> dict:
    env = os.environ.copy()
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    env["PYTHONUNBUFFERED"] = "1"
    return env


def ako(*args: str, timeout: float = 90) -> subprocess.CompletedProcess:
    """`ako …`, as installed (python -m bot is the same entry point)."""
    return subprocess.run(
        [sys.executable, "-m", "bot", *args], capture_output=True, text=True, timeout=timeout, cwd=REPO_ROOT, env=_env()
    )


# --- ako check


@pytest.fixture(scope="module")
def account(hs_a):
    """A bot account of its own on school A's server: (user id, password)."""
    localpart, password = unique_localpart("akocheck"), "right-password-1"
    user_id, _ = hs_a.register(localpart, password)
    return user_id, password


def check(tmp_path, hs, user_id, password, **overrides) -> tuple[int, str]:
    cfg = write_bot_config(tmp_path / "config.toml", hs, user_id, password, [hs.user_id("it")], tmp_path / "data", **overrides)
    done = ako("check", "--config", str(cfg))
    return done.returncode, done.stdout + done.stderr


def assert_clear_failure(code: int, out: str, *words: str) -> None:
    assert code != 0, out
    assert "Traceback" not in out and 'File "' not in out, out
    for word in words:
        assert word in out, f"{word!r} not in: {out}"


def test_check_passes_on_a_good_config(tmp_path, hs_a, account):
    code, out = check(tmp_path, hs_a, *account)
    assert code == 0, out
    assert f"Reached {hs_a.client_url} and logged in as {account[0]}." in out, out
    assert not (tmp_path / "data").exists(), "ako check creates no data_dir (loading config has no side effects)"


def test_check_on_a_wrong_password(tmp_path, hs_a, account):
    code, out = check(tmp_path, hs_a, account[0], "not-the-password")
    assert_clear_failure(code, out, f"Could not log in as {account[0]}:")
    assert re.search(r"Could not log in as \S+: .*(password|Forbidden)", out, re.I), out


def test_check_on_an_unreachable_homeserver(tmp_path, hs_a, account):
    (port,) = free_ports(1)  # nothing listens there
    url = f"http://127.0.0.1:{port}"
    code, out = check(tmp_path, hs_a, *account, matrix={"homeserver": url})
    assert_clear_failure(code, out, f"matrix.homeserver: cannot reach {url}")
    assert len(out.strip().splitlines()) <= 4, out


def test_check_on_an_unknown_key(tmp_path, hs_a, account):
    code, out = check(tmp_path, hs_a, *account, bot={"colour": "blue"})
    assert_clear_failure(code, out, "bot.colour")
    # (the line itself: the test's folder name has "unknown" in it too)
    assert re.search(r"^\s*bot\.colour: .*(not a setting|unknown)", out, re.M | re.I), out


def test_check_on_a_change_me_value(tmp_path, hs_a, account):
    code, out = check(tmp_path, hs_a, account[0], "change-me")
    assert_clear_failure(code, out, "matrix.password", "change-me")
    assert re.search(r"^\s*matrix\.password: .*'change-me'", out, re.M), out


# --- ako dev


def _pids(state: Path) -> list[int]:
    return [int((d / PID_FILE).read_text()) for d in sorted(state.glob("hs-*")) if (d / PID_FILE).exists()]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie (exited, not yet reaped) is not running
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def _processes_using(state: Path) -> list[int]:
    """Every process whose command line names the dev state folder (Synapse is started with its config there)."""
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                if str(state) in proc.joinpath("cmdline").read_bytes().decode(errors="replace"):
                    found.append(int(proc.name))
            except OSError:
                pass
    return found


class Dev:
    """`ako dev --state <folder>` in its own process group, as a terminal runs it."""

    def __init__(self, state: Path):
        self.state = state
        self.log = state.parent / f"dev-{time.monotonic_ns()}.out"
        self.process: subprocess.Popen | None = None

    def start(self) -> "Dev":
        with open(self.log, "wb") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "bot", "dev", "--state", str(self.state)],
                cwd=REPO_ROOT, env=_env(), stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return self

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_ready(self, timeout: float = 240) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            out = self.output()
            if "Ctrl-C stops the bot and both homeservers." in out:
                return out
            if self.process.poll() is not None:
                raise AssertionError(f"ako dev exited {self.process.returncode}:\n{out[-3000:]}")
            time.sleep(0.5)
        raise AssertionError(f"ako dev not ready within {timeout}s:\n{self.output()[-3000:]}")

    def ctrl_c(self, timeout: float = 60, *, group: bool = True) -> int:
        """SIGINT to the whole process group, as Ctrl-C in a terminal does (or to `ako dev` alone)."""
        if group:
            os.killpg(self.process.pid, signal.SIGINT)
        else:
            os.kill(self.process.pid, signal.SIGINT)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"ako dev did not stop within {timeout}s of Ctrl-C:\n{self.output()[-3000:]}")

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)


def logins(out: str) -> dict[str, str]:
    """The printed homeserver URLs and accounts (README: `ako dev` prints the logins)."""
    found = dict(re.findall(r"School ([AB]) homeserver: (\S+)", out))
    found.update({m: m for m in re.findall(r"^\s+(@\w+:\S+)\s", out, re.M)})
    return found


@pytest.fixture(scope="module")
def dev_state(tmp_path_factory):
    return tmp_path_factory.mktemp("ako-dev") / ".ako-dev"


async def test_ako_dev_runs_a_join_stops_on_ctrl_c_and_restarts_with_the_same_accounts(dev_state):
    first = Dev(dev_state).start()
    try:
        out = first.wait_ready()
        printed = logins(out)
        assert "A" in printed and "B" in printed, out
        assert f"Password for every account: {DEV_PASSWORD}" in out, out
        assert "!join DEMO1" in out, out
        server_pids = _pids(dev_state)
        assert len(server_pids) == 2 and all(_alive(p) for p in server_pids), server_pids

        # a learner on school B, with the printed password, joins the demo class
        hs_b = load_state(dev_state / "hs-b", log=lambda m: None)
        hs_a = load_state(dev_state / "hs-a", log=lambda m: None)
        assert hs_b.client_url == printed["B"], (hs_b.client_url, printed)
        bot_id = hs_a.user_id("ako")
        ben = await MatrixUser.create(hs_b, "ben", DEV_PASSWORD)
        try:
            assert ben.user_id in printed, (ben.user_id, out)
            dm = await open_dm(ben, bot_id)
            reply = await ben.command(dm, "!join DEMO1", timeout=60)
            assert "Welcome to **Demo Class**" in reply["body"], reply["body"]
            invited = await ben.wait_invite(timeout=60)
            assert invited
        finally:
            await ben.close()

        code = first.ctrl_c()
    finally:
        first.kill()
    out = first.output()
    assert code == 0, out[-3000:]
    assert "Traceback" not in out, out[-3000:]
    assert not any(_alive(p) for p in server_pids), f"homeservers left running: {server_pids}"
    assert _processes_using(dev_state) == [], "processes left running from ako dev"

    # a second start: same servers, same accounts, the bot still knows Ben
    state_before = {d.name: json.loads((d / STATE_FILE).read_text()) for d in dev_state.glob("hs-*")}
    second = Dev(dev_state).start()
    try:
        out2 = second.wait_ready()
        assert "Setting up schools A and B" not in out2, "the second start seeded again"
        assert logins(out2) == printed, (logins(out2), printed)
        assert {d.name: json.loads((d / STATE_FILE).read_text()) for d in dev_state.glob("hs-*")} == state_before
        ben = await MatrixUser.create(hs_b, "ben", DEV_PASSWORD)  # logs in: the account exists
        try:
            assert ben.user_id == hs_b.user_id("ben")
            reply = await ben.command(dm, "!classes", timeout=60)
            assert "Demo Class" in reply["body"], reply["body"]
        finally:
            await ben.close()
        server_pids = _pids(dev_state)
        # this time SIGINT reaches `ako dev` alone (as from `kill -INT`): it stops its homeservers itself
        assert second.ctrl_c(group=False) == 0, second.output()[-3000:]
    finally:
        second.kill()
    out2 = second.output()
    assert "Stopping the homeservers" in out2 and "Traceback" not in out2, out2[-3000:]
    assert not any(_alive(p) for p in server_pids)
    assert _processes_using(dev_state) == []
