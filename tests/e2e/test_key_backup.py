"""Recovery against a real homeserver (issue 19, item 2): lose the data folder, keep the identity and
the encrypted rooms' history.

Ako runs with encryption on (its own account and data folder on A). At its first start it sets up
recovery: a recovery key printed once and written to RECOVERY-KEY.txt (0600), secret storage holding
its cross-signing keys and the key backup's key, a key backup its room keys go into after each sync.
A cross-signed user talks to it in an encrypted DM. Then Ako stops and its whole data folder is
deleted. A wrong recovery key restores nothing and says so; the right one restores the identity and
every room key into a new device, which decrypts the old messages fetched with /messages; Ako starts
on it with the same master key, its new device signed by it.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import stat
import time
from urllib.parse import quote

import nio

from bot import identity, key_backup, secret_storage
from bot.encryption import client_config
from tests.botproc import BotProcess, write_bot_config
from tests.element_user import ElementUser, element_client  # noqa: F401  (fixture)
from tests.matrix_user import MatrixUser, unique_localpart

from .helpers import open_dm
from .test_element import ask, readable, sees_signed
from .test_identity import ako_cli, master_of, server_view, signed_devices

PASSWORD = "ako-recovery-password"


def recovery_key_in(data) -> str:
    text = (data / "RECOVERY-KEY.txt").read_text()
    return next(line.strip() for line in text.splitlines() if line.startswith("    "))


def backed_up(data, room_id: str) -> int:
    try:
        keys = json.loads((data / key_backup.FILE).read_text())["keys"]
    except (FileNotFoundError, ValueError, KeyError):
        return 0
    return sum(1 for slot in keys if slot.startswith(room_id + " "))


async def wait_until(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        await asyncio.sleep(0.2)


async def backup_is_signed_by(hs, user_id: str, token: str, master: str) -> None:
    """The backup's auth_data carries a valid signature of Ako's master key (how other clients trust it)."""
    from signedjson.key import decode_verify_key_bytes
    from signedjson.sign import verify_signed_json

    client = nio.AsyncClient(hs.client_url, user_id)
    client.access_token = token
    try:
        resp = await client.send("GET", "/_matrix/client/v3/room_keys/version", headers={"Authorization": f"Bearer {token}"})
        version = await resp.json()
    finally:
        await client.close()
    assert version["algorithm"] == "m.megolm_backup.v1.curve25519-aes-sha2"
    key = decode_verify_key_bytes(f"ed25519:{master}", secret_storage.unb64(master))
    verify_signed_json(version["auth_data"], user_id, key)  # raises if the signature is missing or wrong


async def decrypt_history(hs, data, room_id: str) -> list[tuple[str, str]]:
    """(sender, body) of every message in the room, oldest first, fetched with /messages and decrypted
    by the device in data_dir (its session.json and crypto store) with nothing but its own keys."""
    session = json.loads((data / "session.json").read_text())
    client = nio.AsyncClient(
        hs.client_url, session["user_id"], device_id=session["device_id"], store_path=str(data / "crypto"),
        config=client_config(True, max_timeouts=2, request_timeout=30),
    )
    client.restore_login(session["user_id"], session["device_id"], session["access_token"])
    try:
        resp = await client.send(
            "GET",
            f"/_matrix/client/v3/rooms/{quote(room_id)}/messages?dir=b&limit=100",
            headers={"Authorization": f"Bearer {session['access_token']}"},
        )
        chunk = (await resp.json())["chunk"]
        out = []
        for raw in reversed(chunk):
            if raw["type"] != "m.room.encrypted":
                continue
            event = nio.MegolmEvent.from_dict(raw)
            event.room_id = room_id
            try:
                clear = client.decrypt_event(event)
            except nio.exceptions.EncryptionError as e:
                out.append((raw["sender"], f"<undecryptable: {e}>"))
                continue
            out.append((raw["sender"], clear.source["content"].get("body", "")))
        return out
    finally:
        await client.close()


async def test_a_lost_data_folder_keeps_its_identity_and_history_with_the_recovery_key(hs_a, tmp_path):
    bot_id, token = hs_a.register(unique_localpart("akorec"), PASSWORD)
    user_localpart = unique_localpart("hemi")
    data = tmp_path / "data"
    cfg = write_bot_config(tmp_path / "config.toml", hs_a, bot_id, PASSWORD, [hs_a.user_id(user_localpart)], data)
    proc = BotProcess(cfg, data)
    user = await MatrixUser.create(hs_a, user_localpart, encrypted=True, store_dir=tmp_path / "user-store")
    try:
        proc.start()
        # set up once, at the first start: the key printed in a block and kept in a file only the bot's user reads
        await wait_until(lambda: (data / key_backup.FILE).exists(), 30, "recovery was not set up")
        recovery_text = recovery_key_in(data)
        assert stat.S_IMODE((data / "RECOVERY-KEY.txt").stat().st_mode) == 0o600
        assert f"RECOVERY KEY for {bot_id} (shown once)" in proc.log_text()
        assert proc.log_text().count(recovery_text) == 1  # printed once
        master = json.loads(identity.identity_file(data).read_text())["master_public"]
        old_device = json.loads((data / "session.json").read_text())["device_id"]
        await backup_is_signed_by(hs_a, bot_id, token, master)

        room = await user.dm(bot_id, encrypted=True)
        await user.wait_for(
            room, lambda e: e["type"] == "m.room.member" and e["state_key"] == bot_id and e["content"]["membership"] == "join",
            timeout=30, since=0,
        )
        said = ["Kia ora, first note", "The lab results are in", "Third and last note"]
        for text in said:
            await user.send(room, text)
        # Ako answers (encrypted; its room key goes only to devices of registered schools' users, so this user
        # cannot read it): its own room key is made, and must be backed up too
        mark = user.mark(room)
        await user.send(room, "!help")
        await user.wait_for(room, lambda e: e["sender"] == bot_id and e["type"] == "m.room.encrypted", timeout=30, since=mark)
        await wait_until(lambda: backed_up(data, room) >= 2, 60, f"the room keys of {room} were not backed up:\n{proc.log_tail()}")
        assert "Key backup:" not in proc.log_text()

        restarted = proc.log_text().count("Recovery set up")
        proc.stop()
        proc.start()  # a restart keeps the set-up: no new recovery key, and nothing uploaded twice
        assert proc.log_text().count("Recovery set up") == restarted == 1
        assert "Backed up" not in proc.log_text().split("==== start")[-1]
        proc.stop()

        shutil.rmtree(data)  # the disk is lost: database, session, crypto store, identity, everything

        other = secret_storage.encode_recovery_key(os.urandom(32))
        wrong = ako_cli("restore-keys", "--config", str(cfg), "--recovery-key", other)
        assert wrong.returncode == 1
        assert "does not open the secret storage" in wrong.stderr and "Nothing was written" in wrong.stderr
        assert not data.exists() or not any(data.iterdir())
        typo = ako_cli("restore-keys", "--config", str(cfg), "--recovery-key", recovery_text[:-1] + ("A" if recovery_text[-1] != "A" else "B"))
        assert typo.returncode == 1 and "That is not a recovery key" in typo.stderr
        assert not data.exists() or not any(data.iterdir())
        assert "Traceback" not in wrong.stderr + typo.stderr

        right = ako_cli("restore-keys", "--config", str(cfg), "--recovery-key", recovery_text)
        assert right.returncode == 0, right.stdout + right.stderr
        assert identity.fingerprint(master) in right.stdout
        assert json.loads(identity.identity_file(data).read_text())["master_public"] == master
        new_device = json.loads((data / "session.json").read_text())["device_id"]
        assert new_device != old_device

        history = await decrypt_history(hs_a, data, room)
        assert [body for sender, body in history if sender == user.user_id] == said + ["!help"]
        assert any(sender == bot_id and "<undecryptable" not in body for sender, body in history), history

        view = await server_view(hs_a, bot_id, token)
        assert master_of(view, bot_id) == master
        assert signed_devices(view, bot_id)[new_device] is True

        proc.start()  # Ako runs on the restored folder: same identity, the backup it writes to is the old one
        assert "Key backup:" not in proc.log_text().split("==== start")[-1]
        assert "Recovery set up" not in proc.log_text().split("==== start")[-1]
        assert not (data / "RECOVERY-KEY.txt").exists()
        assert master_of(await server_view(hs_a, bot_id, token), bot_id) == master
        proc.stop()

        # `ako rebuild`: the same restore, a walk of the rooms, and the database from Ako's records in them
        shutil.rmtree(data)
        wrong = ako_cli("rebuild", "--config", str(cfg), "--recovery-key", other)
        assert wrong.returncode == 1 and "does not open the secret storage" in wrong.stderr
        assert not data.exists() or not any(data.iterdir())
        rebuilt = ako_cli("rebuild", "--config", str(cfg), "--recovery-key", recovery_text)
        assert rebuilt.returncode == 0, rebuilt.stdout + rebuilt.stderr
        assert identity.fingerprint(master) in rebuilt.stdout
        assert "from 1 room(s)" in rebuilt.stdout and "rooms walked: 1/1" in rebuilt.stderr
        # the four messages, Ako's answer and its records, each decrypted with the restored room keys
        read = re.search(r"(\d+) of them encrypted, (\d+) of those decrypted with the restored room keys\.", rebuilt.stdout)
        assert read and int(read.group(1)) >= 5 and read.group(1) == read.group(2), rebuilt.stdout
        exported = json.loads(ako_cli("export", "--all", "--config", str(cfg)).stdout)["tables"]
        assert [row["room_id"] for row in exported["processed_events"]] == [room]  # !help (plain notes leave no mark)
        assert json.loads(identity.identity_file(data).read_text())["master_public"] == master
        assert "Traceback" not in rebuilt.stdout + rebuilt.stderr
    finally:
        proc.stop()
        await user.close()


async def test_after_an_identity_reset_a_new_recovery_key_holds_the_new_identity(hs_a, tmp_path):
    bot_id, token = hs_a.register(unique_localpart("akorenew"), PASSWORD)
    data = tmp_path / "data"
    cfg = write_bot_config(tmp_path / "config.toml", hs_a, bot_id, PASSWORD, [hs_a.user_id("it")], data)
    proc = BotProcess(cfg, data)
    try:
        proc.start()
        await wait_until(lambda: (data / key_backup.FILE).exists(), 30, "recovery was not set up")
        first_key = recovery_key_in(data)
        proc.stop()
        reset = ako_cli("identity", "reset", "--config", str(cfg))
        assert reset.returncode == 0, reset.stdout + reset.stderr
        new_master = json.loads(identity.identity_file(data).read_text())["master_public"]
        proc.start()
        await wait_until(lambda: "Secret storage holds Ako's previous identity" in proc.log_text(), 30, proc.log_tail())
        assert "ako recovery-key new" in proc.log_text()
        proc.stop()

        renewed = ako_cli("recovery-key", "new", "--config", str(cfg))
        assert renewed.returncode == 0, renewed.stdout + renewed.stderr
        second_key = recovery_key_in(data)
        assert second_key != first_key and renewed.stderr.count(second_key) == 1 and "New recovery key above" in renewed.stdout
        proc.start()
        proc.stop()
        assert "Secret storage holds Ako's previous identity" not in proc.log_text().split("==== start")[-1]
        assert "Key backup:" not in proc.log_text().split("==== start")[-1]

        shutil.rmtree(data)
        old = ako_cli("restore-keys", "--config", str(cfg), "--recovery-key", first_key)
        assert old.returncode == 1 and "does not open the secret storage" in old.stderr
        restored = ako_cli("restore-keys", "--config", str(cfg), "--recovery-key", second_key)
        assert restored.returncode == 0, restored.stdout + restored.stderr
        assert json.loads(identity.identity_file(data).read_text())["master_public"] == new_master
        assert master_of(await server_view(hs_a, bot_id, token), bot_id) == new_master
    finally:
        proc.stop()


async def test_an_element_learner_sees_no_identity_change_after_a_restore(element_client, hs_a, tmp_path):
    """Element's mode (matrix-js-sdk, only devices signed by their owner): after the data folder is lost
    and restored, the learner's client sees Ako's same identity (no approval asked), its new device
    signed by it, and talks to it; the new device reads what she wrote before the loss."""
    bot_id, token = hs_a.register(unique_localpart("akorecel"), PASSWORD)
    operator = await MatrixUser.create(hs_a, unique_localpart("recop"))
    data = tmp_path / "data"
    cfg = write_bot_config(tmp_path / "config.toml", hs_a, bot_id, PASSWORD, [operator.user_id], data)
    proc = BotProcess(cfg, data)
    learner = None
    try:
        proc.start()
        odm = await open_dm(operator, bot_id)
        reply = await operator.command(odm, f'!school add {hs_a.server_name} "Kura A"')
        assert "Registered" in reply["body"], reply["body"]
        learner = await ElementUser.create(hs_a, unique_localpart("recel"), log_dir=tmp_path)
        dm = await learner.dm(bot_id)
        assert "!join" in await ask(learner, dm, "!help")
        before = ["Before the disk died", "A second line"]
        for text in before:
            await learner.send(dm, text)
        await wait_until(lambda: backed_up(data, dm) >= 2, 60, f"the room keys of {dm} were not backed up:\n{proc.log_tail()}")
        recovery_text = recovery_key_in(data)
        master = json.loads(identity.identity_file(data).read_text())["master_public"]
        mark = await learner.mark(dm)
        # the database comes back here from `ako backup`, the fast restore the README describes
        saved = ako_cli("backup", str(tmp_path / "ako-backup.db"), "--config", str(cfg))
        assert saved.returncode == 0, saved.stdout + saved.stderr
        proc.stop()

        shutil.rmtree(data)
        right = ako_cli("restore-keys", "--config", str(cfg), "--recovery-key", recovery_text)
        assert right.returncode == 0, right.stdout + right.stderr
        history = await decrypt_history(hs_a, data, dm)
        mine = [body for sender, body in history if sender == learner.user_id]
        assert mine[-2:] == before and "!help" in mine, history
        shutil.copy(tmp_path / "ako-backup.db", data / "ako.db")

        proc.start()
        device = json.loads((data / "session.json").read_text())["device_id"]
        await sees_signed(learner, bot_id, device)
        seen = await learner.user_identity(bot_id)
        assert seen["known"] and not seen["needs_user_approval"], seen
        assert master_of(await server_view(hs_a, bot_id, token), bot_id) == master
        assert "!join" in await ask(learner, dm, "!help", timeout=60)
        for event in [e for e in await learner.events(dm, since=mark) if e["sender"] == bot_id]:
            readable(event)
    finally:
        proc.stop()
        if learner is not None:
            await learner.close()
        await operator.close()
