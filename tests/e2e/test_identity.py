"""Ako's cross-signing identity against a real homeserver (issue 13, README "End-to-end encryption").

- The first start creates the identity, keeps it in data_dir (0600), publishes it, signs the device.
- Restarts keep it; a lost crypto store gives a new device signed by the same identity.
- A master key on the server that is not Ako's is reported (log and `ako check`), never silently
  replaced; `ako identity reset` publishes a new one and signs the device with it.
- With only an access token, the sentence says what the admin must do.

Each test runs its own Ako on school A with its own account, so nothing depends on another test.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys

import nio
import pytest

from bot import identity
from tests.botproc import REPO_ROOT, BotProcess, write_bot_config
from tests.matrix_user import unique_localpart

PASSWORD = "ako-identity-password"


async def server_view(hs, user_id: str, token: str) -> dict:
    """What any client sees: /keys/query for the bot's account."""
    client = nio.AsyncClient(hs.client_url, user_id)
    client.access_token = token
    try:
        resp = await client.send(
            "POST",
            "/_matrix/client/v3/keys/query",
            json.dumps({"device_keys": {user_id: []}}),
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        )
        return await resp.json()
    finally:
        await client.close()


def master_of(view: dict, user_id: str) -> str | None:
    keys = list((view.get("master_keys", {}).get(user_id) or {}).get("keys", {}).values())
    return keys[0] if keys else None


def signed_devices(view: dict, user_id: str) -> dict[str, bool]:
    """Device id -> whether the published self-signing key signed it."""
    ssk = list((view.get("self_signing_keys", {}).get(user_id) or {}).get("keys", {}).values())
    out = {}
    for device_id, keys in view.get("device_keys", {}).get(user_id, {}).items():
        out[device_id] = bool(ssk) and f"ed25519:{ssk[0]}" in keys.get("signatures", {}).get(user_id, {})
    return out


async def publish_another_identity(hs, user_id: str, token: str) -> None:
    """A new master key for the account, published with its password, not by Ako."""
    client = nio.AsyncClient(hs.client_url, user_id)
    client.access_token, client.user_id = token, user_id
    try:
        await identity.upload(client, identity.Identity.generate(), PASSWORD)
    finally:
        await client.close()


def ako_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "bot", *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
    )


@pytest.fixture
def own_bot(hs_a, tmp_path):
    """A fresh account and config for one Ako on school A; the process is stopped at the end."""
    localpart = unique_localpart("akoid")
    user_id, token = hs_a.register(localpart, PASSWORD)
    data = tmp_path / "data"
    cfg = write_bot_config(tmp_path / "config.toml", hs_a, user_id, PASSWORD, [hs_a.user_id("it")], data)
    proc = BotProcess(cfg, data)
    yield user_id, token, cfg, data, proc
    proc.stop()


async def test_identity_is_created_once_kept_and_signs_every_new_device(hs_a, own_bot):
    user_id, token, cfg, data, proc = own_bot
    proc.start()
    kept = identity.identity_file(data)
    assert stat.S_IMODE(kept.stat().st_mode) == 0o600
    master = json.loads(kept.read_text())["master_public"]
    first_device = json.loads((data / "session.json").read_text())["device_id"]
    view = await server_view(hs_a, user_id, token)
    assert master_of(view, user_id) == master
    assert signed_devices(view, user_id)[first_device] is True

    check = ako_cli("check", "--config", str(cfg))
    assert check.returncode == 0, check.stdout + check.stderr
    assert identity.fingerprint(master) in check.stdout
    assert f"This device ({first_device}): signed by that identity" in check.stdout
    assert "holds the same master key" in check.stdout

    for _ in range(2):  # restarts: the same identity, the same device
        proc.stop()
        proc.start()
    assert json.loads(kept.read_text())["master_public"] == master
    assert json.loads((data / "session.json").read_text())["device_id"] == first_device

    proc.stop()  # the crypto store is lost: a new device, signed by the same identity
    shutil.rmtree(data / "crypto")
    proc.start()
    new_device = json.loads((data / "session.json").read_text())["device_id"]
    assert new_device != first_device
    view = await server_view(hs_a, user_id, token)
    assert master_of(view, user_id) == master
    assert signed_devices(view, user_id)[new_device] is True
    assert "Created Ako's cross-signing identity" not in proc.log_text().split("==== start")[-1]


async def test_a_foreign_master_key_is_reported_never_replaced_and_reset_publishes_a_new_one(hs_a, own_bot):
    user_id, token, cfg, data, proc = own_bot
    proc.start()
    proc.stop()
    ours = json.loads(identity.identity_file(data).read_text())["master_public"]

    # someone with the account's password resets its cross-signing (as "reset identity" in a client would)
    await publish_another_identity(hs_a, user_id, token)
    foreign = master_of(await server_view(hs_a, user_id, token), user_id)
    assert foreign != ours

    proc.start()
    assert "is not Ako's own" in proc.log_text()
    assert master_of(await server_view(hs_a, user_id, token), user_id) == foreign  # not silently reset
    check = ako_cli("check", "--config", str(cfg))
    assert check.returncode == 1
    assert "does NOT hold this master key" in check.stdout and "ako identity reset" in check.stdout
    assert "Traceback" not in check.stdout + check.stderr
    proc.stop()

    reset = ako_cli("identity", "reset", "--config", str(cfg))
    assert reset.returncode == 0, reset.stdout + reset.stderr
    new = json.loads(identity.identity_file(data).read_text())["master_public"]
    assert new not in (ours, foreign)
    assert identity.fingerprint(new) in reset.stdout
    assert master_of(await server_view(hs_a, user_id, token), user_id) == new
    assert stat.S_IMODE(identity.identity_file(data).stat().st_mode) == 0o600

    proc.start()
    device = json.loads((data / "session.json").read_text())["device_id"]
    assert signed_devices(await server_view(hs_a, user_id, token), user_id)[device] is True
    check = ako_cli("check", "--config", str(cfg))
    assert check.returncode == 0, check.stdout


async def test_with_only_an_access_token_the_admin_is_told_what_to_do(hs_a, tmp_path):
    user_id, token = hs_a.register(unique_localpart("akotok"), PASSWORD)
    # a master key the server already holds means replacing it needs the password (user-interactive auth)
    await publish_another_identity(hs_a, user_id, token)
    cfg = write_bot_config(
        tmp_path / "config.toml", hs_a, user_id, PASSWORD, [hs_a.user_id("it")], tmp_path / "data",
        matrix={"password": None, "access_token": token},
    )
    reset = ako_cli("identity", "reset", "--config", str(cfg))
    assert reset.returncode == 1
    assert "asks for the account's password" in reset.stderr and "matrix.password" in reset.stderr
    assert "Traceback" not in reset.stdout + reset.stderr
