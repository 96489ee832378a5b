"""`ako dev`: two federated schools on loopback, the bot, demo accounts and an example class."""

from __future__ import annotations

import asyncio
import logging
import signal
from pathlib import Path

import nio

from . import config as config_mod
from .runtime import READY_FILE, Ako

log = logging.getLogger("ako.dev")

PASSWORD = "ako-dev-password"
# (server index, localpart, role shown to the person trying it out)
ACCOUNTS = [
    (0, "it", "operator"),
    (0, "admin", "school admin of school A"),
    (1, "admin", "school admin of school B"),
    (0, "teacher", "teacher at school A"),
    (1, "teacher", "teacher at school B"),
    (0, "ana", "learner at school A"),
    (1, "ben", "learner at school B"),
]
CLASS_CODE = "DEMO1"


async def _say(client: nio.AsyncClient, room_id: str, text: str) -> None:
    resp = await client.room_send(room_id, "m.room.message", {"msgtype": "m.text", "body": text})
    if isinstance(resp, nio.ErrorResponse):
        raise RuntimeError(f"{client.user_id} could not send {text!r}: {resp.message}")


async def _dm(client: nio.AsyncClient, bot: str) -> str:
    resp = await client.room_create(is_direct=True, invite=[bot], name=f"Ako ({client.user_id})")
    if isinstance(resp, nio.ErrorResponse):
        raise RuntimeError(f"Could not open a DM with {bot}: {resp.message}")
    return resp.room_id


async def _wait_joined(client: nio.AsyncClient, room_id: str, user_id: str, timeout: float = 20) -> None:
    for _ in range(int(timeout / 0.25)):
        resp = await client.joined_members(room_id)
        if not isinstance(resp, nio.ErrorResponse) and any(m.user_id == user_id for m in resp.members):
            return
        await asyncio.sleep(0.25)
    raise RuntimeError(f"{user_id} did not join {room_id}")


async def _seed(servers, users: dict, bot: str) -> None:
    """Register the two schools, their admins and teachers, and a demo class, through real commands."""
    clients = {}
    try:
        for key, (user_id, token) in users.items():
            hs = servers[key[0]]
            c = nio.AsyncClient(hs.client_url, user_id)
            c.restore_login(user_id, "dev", token)
            clients[key] = c
        a, b = servers[0].server_name, servers[1].server_name
        script = [
            ((0, "it"), [f'!school add {a} "School A"', f'!school add {b} "School B"', f"!school admin {a} {users[(0, 'admin')][0]}", f"!school admin {b} {users[(1, 'admin')][0]}"]),
            ((0, "admin"), [f"!staff add {users[(0, 'teacher')][0]}"]),
            ((1, "admin"), [f"!staff add {users[(1, 'teacher')][0]}"]),
            ((0, "teacher"), [f'!class new "Demo Class" {CLASS_CODE}']),
        ]
        for key, lines in script:
            client = clients[key]
            room = await _dm(client, bot)
            await _wait_joined(client, room, bot)
            for line in lines:
                await _say(client, room, line)
                await asyncio.sleep(0.6)
        await asyncio.sleep(2)
    finally:
        for c in clients.values():
            await c.close()


def run_dev(state: Path) -> int:
    # tools of `ako dev` alone, not of Ako
    from devtools.bot_config import write_bot_config
    from devtools.homeserver import dev_cluster, stop_homeservers

    state = state.resolve()
    state.mkdir(parents=True, exist_ok=True)
    print(f"Starting two federated homeservers under {state} …", flush=True)
    servers = dev_cluster(state, log=lambda m: log.info("%s", m))
    try:
        users = {}
        for index, localpart, _ in ACCOUNTS:
            users[(index, localpart)] = servers[index].register(localpart, PASSWORD, admin=localpart == "it")
        bot_id, _ = servers[0].register("ako", PASSWORD)
        cfg_path = state / "config.toml"
        data_dir = state / "bot-data"
        write_bot_config(cfg_path, servers[0].client_url, servers[0].user_id("ako"), PASSWORD, [users[(0, "it")][0]], data_dir)
        cfg = config_mod.load(cfg_path)
        seeded = (state / "seeded").exists()

        async def main() -> None:
            ako = Ako(cfg)
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, ako.stop)
            task = asyncio.create_task(ako.run())
            while not (data_dir / READY_FILE).exists():
                if task.done():
                    await task
                    return
                await asyncio.sleep(0.2)
            if not seeded:
                print("Setting up schools A and B, staff, and a demo class …", flush=True)
                await _seed(servers, users, bot_id)
                (state / "seeded").write_text("yes\n")
            _print_logins(servers, users, bot_id, cfg_path)
            await task

        asyncio.run(main())
    finally:
        print("Stopping the homeservers …", flush=True)
        stop_homeservers(servers)
    return 0


def _print_logins(servers, users, bot_id: str, cfg_path: Path) -> None:
    lines = [
        "",
        "Ako is running on two local schools. Log in with any Matrix client (e.g. Element: 'Sign in' → 'Edit' homeserver):",
        f"  School A homeserver: {servers[0].client_url}   (server name {servers[0].server_name})",
        f"  School B homeserver: {servers[1].client_url}   (server name {servers[1].server_name})",
        f"  Password for every account: {PASSWORD}",
        "",
    ]
    for index, localpart, role in ACCOUNTS:
        lines.append(f"  {users[(index, localpart)][0]:<32} {role}")
    lines += [
        "",
        f"  The bot: {bot_id}. Open a direct message with it and type !help.",
        f"  Learners join the demo class with: !join {CLASS_CODE}",
        f"  Bot config: {cfg_path}",
        "Ctrl-C stops the bot and both homeservers.",
        "",
    ]
    print("\n".join(lines), flush=True)
