"""Ako's cross-signing identity: its master, self-signing and user-signing keys, kept in data_dir,
published on the homeserver once, and used to sign each device Ako logs in on.

Element excludes devices not cross-signed by their owner (MSC4153): it shares no room keys with
them and hides their messages. matrix-nio has no cross-signing, so this module does it with the
Matrix libraries made for it (signedjson over canonical JSON).

An identity that exists is never replaced on its own: clients pin the master key they first saw,
and a new one makes every client warn that Ako's identity changed. Only ``ako identity reset``
replaces what the server holds.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import nio
from signedjson.key import decode_signing_key_base64, encode_signing_key_base64, encode_verify_key_base64, generate_signing_key, get_verify_key
from signedjson.sign import sign_json

log = logging.getLogger("ako.identity")

FILE = "cross-signing.json"
USAGES = ("master", "self_signing", "user_signing")


def identity_file(data_dir: Path) -> Path:
    """Beside the crypto store, not in it: a lost crypto store (a new device) keeps the identity."""
    return data_dir / FILE


class IdentityError(Exception):
    """A sentence for the admin: what is wrong with Ako's identity and what to do."""


@dataclass(frozen=True)
class Identity:
    master: object
    self_signing: object
    user_signing: object

    @classmethod
    def generate(cls) -> "Identity":
        return cls(*(_new_key() for _ in USAGES))

    def key(self, usage: str):
        return {"master": self.master, "self_signing": self.self_signing, "user_signing": self.user_signing}[usage]

    @property
    def master_public(self) -> str:
        return public(self.master)

    @property
    def self_signing_public(self) -> str:
        return public(self.self_signing)

    def published(self, user_id: str, usage: str) -> dict:
        """The key as uploaded: self-signing and user-signing keys carry the master key's signature."""
        key = self.key(usage)
        body = {"user_id": user_id, "usage": [usage], "keys": {f"ed25519:{public(key)}": public(key)}}
        return body if usage == "master" else sign_json(body, user_id, self.master)

    def upload_body(self, user_id: str) -> dict:
        return {f"{usage}_key": self.published(user_id, usage) for usage in USAGES}

    def sign_device(self, user_id: str, device_keys: dict) -> dict:
        """The device's keys signed by the self-signing key (the body of /keys/signatures/upload)."""
        unsigned = {k: v for k, v in device_keys.items() if k not in ("signatures", "unsigned")}
        signed = sign_json(unsigned, user_id, self.self_signing)
        ours = signed["signatures"][user_id]
        return {**unsigned, "signatures": {user_id: {**device_keys.get("signatures", {}).get(user_id, {}), **ours}}}

    def to_json(self) -> dict:
        return {usage: encode_signing_key_base64(self.key(usage)) for usage in USAGES} | {"master_public": self.master_public}

    @classmethod
    def from_json(cls, raw: dict) -> "Identity":
        keys = []
        for usage in USAGES:
            key = decode_signing_key_base64("ed25519", "x", raw[usage])
            key.version = public(key)
            keys.append(key)
        return cls(*keys)


def _new_key():
    key = generate_signing_key("x")
    key.version = public(key)  # a cross-signing key's id is its own public key
    return key


def public(key) -> str:
    return encode_verify_key_base64(get_verify_key(key))


def fingerprint(master_public: str) -> str:
    """The master key as people compare it: groups of four."""
    return " ".join(master_public[i : i + 4] for i in range(0, len(master_public), 4))


def load(data_dir: Path) -> Identity | None:
    path = identity_file(data_dir)
    if not path.exists():
        return None
    try:
        return Identity.from_json(json.loads(path.read_text()))
    except (ValueError, KeyError, TypeError) as e:
        raise IdentityError(f"{path} is not a cross-signing identity Ako can read ({type(e).__name__}); restore it from a backup.") from e


def save(data_dir: Path, identity: Identity) -> None:
    """Written readable by its owner only (0600), atomically."""
    path = identity_file(data_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(identity.to_json(), f, indent=1)
        f.flush()
        os.fsync(f.fileno())
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


# --- what the server holds


@dataclass(frozen=True)
class Published:
    """What the homeserver says about Ako's account and device."""

    master: str | None  # the master public key the server holds, if any
    self_signing: str | None
    device_keys: dict | None

    def device_signed_by(self, self_signing_public: str, user_id: str) -> bool:
        sigs = (self.device_keys or {}).get("signatures", {}).get(user_id, {})
        return f"ed25519:{self_signing_public}" in sigs


@dataclass(frozen=True)
class Status:
    """For the log and ``ako check``."""

    master_public: str | None
    device_signed: bool
    server_agrees: bool
    problem: str | None = None

    def lines(self, device_id: str) -> list[str]:
        out = []
        if self.master_public:
            out.append(f"Cross-signing identity: master key {fingerprint(self.master_public)}")
        else:
            out.append("Cross-signing identity: none kept in the data folder")
        out.append(f"This device ({device_id}): {'signed by that identity' if self.device_signed else 'NOT signed by it'}")
        out.append(f"The homeserver {'holds the same master key' if self.server_agrees else 'does NOT hold this master key'}")
        if self.problem:
            out.append(self.problem)
        return out


def _only_key(obj: dict | None) -> str | None:
    if not obj:
        return None
    keys = list((obj.get("keys") or {}).values())
    return keys[0] if len(keys) == 1 else None


async def _request(client: nio.AsyncClient, method: str, path: str, body: dict) -> tuple[int, dict]:
    resp = await client.send(
        method, path, json.dumps(body), headers={"Authorization": f"Bearer {client.access_token}", "Content-Type": "application/json"}
    )
    try:
        data = await resp.json(content_type=None)
    except (ValueError, Exception):  # an HTML error page from a proxy
        data = {}
    return resp.status, data if isinstance(data, dict) else {}


async def published(client: nio.AsyncClient, device_id: str | None = None) -> Published:
    device_id = device_id or client.device_id
    status, data = await _request(client, "POST", "/_matrix/client/v3/keys/query", {"device_keys": {client.user_id: [device_id]}})
    if status != 200:
        raise IdentityError(f"The homeserver did not answer a key query ({status} {data.get('errcode', '')}).")
    me = client.user_id
    return Published(
        master=_only_key(data.get("master_keys", {}).get(me)),
        self_signing=_only_key(data.get("self_signing_keys", {}).get(me)),
        device_keys=data.get("device_keys", {}).get(me, {}).get(device_id),
    )


async def describe(client: nio.AsyncClient, data_dir: Path, device_id: str | None) -> Status:
    """What ``ako check`` prints: the kept identity, whether the bot's device is signed by it, whether
    the server holds it. Changes nothing."""
    ours = load(data_dir)
    server = await published(client, device_id)
    agrees = ours is not None and server.master == ours.master_public
    signed = ours is not None and device_id is not None and server.device_signed_by(ours.self_signing_public, client.user_id)
    problem = None
    if ours is None and server.master:
        problem = (
            f"The homeserver holds a master key ({fingerprint(server.master)}) that Ako does not have: restore "
            f"{identity_file(data_dir)} from a backup, or run `ako identity reset` (every user's client will say Ako's identity changed)."
        )
    elif ours is None:
        problem = "Ako creates its identity at its next start (it needs matrix.password, or the homeserver's leave to publish keys)."
    elif server.master is None:
        problem = "The homeserver holds no master key for Ako: its next start publishes the kept one."
    elif not agrees:
        problem = (
            f"The homeserver holds another master key ({fingerprint(server.master)}): someone reset it. Run `ako identity reset` "
            "to publish a new identity for Ako (every user's client will say it changed)."
        )
    elif device_id is None:
        problem = "Ako has not logged in yet (no session.json): its first start signs its device."
    elif not signed:
        problem = f"Device {device_id} is not signed yet: Ako's next start signs it."
    return Status(ours.master_public if ours else None, signed, agrees, problem)


async def upload(client: nio.AsyncClient, identity: Identity, password: str | None) -> None:
    """POST /keys/device_signing/upload, with user-interactive auth by password when the server asks."""
    body = identity.upload_body(client.user_id)
    path = "/_matrix/client/v3/keys/device_signing/upload"
    status, data = await _request(client, "POST", path, body)
    if status == 401 and "flows" in data:
        if not password:
            raise IdentityError(
                "The homeserver asks for the account's password to publish Ako's cross-signing keys, and the config has only "
                "an access token. Put the account's password in matrix.password for one start (it is used once, to publish "
                "the keys; you may remove it afterwards), or publish them as the homeserver's admin allows (Synapse: "
                "POST /_synapse/admin/v1/users/<ako>/_allow_cross_signing_replacement_without_uia), then start Ako again."
            )
        auth = {
            "type": "m.login.password",
            "identifier": {"type": "m.id.user", "user": client.user_id},
            "password": password,
            "session": data.get("session"),
        }
        status, data = await _request(client, "POST", path, {**body, "auth": auth})
    if status != 200:
        raise IdentityError(f"The homeserver refused Ako's cross-signing keys: {status} {data.get('errcode', '')} {data.get('error', '')}".strip())


async def sign_device(client: nio.AsyncClient, identity: Identity, device_keys: dict) -> None:
    body = {client.user_id: {client.device_id: identity.sign_device(client.user_id, device_keys)}}
    status, data = await _request(client, "POST", "/_matrix/client/v3/keys/signatures/upload", body)
    failures = data.get("failures") or {}
    if status != 200 or failures:
        raise IdentityError(f"The homeserver refused the signature on device {client.device_id}: {status} {failures or data}")


async def ensure(client: nio.AsyncClient, data_dir: Path, password: str | None) -> Status:
    """At each start with encryption on (after the device's keys are on the server): have an identity,
    have the server hold it, have this device signed by it. Never replaces an identity the server holds."""
    me = client.user_id
    ours = load(data_dir)
    server = await published(client)
    if server.master and (ours is None or server.master != ours.master_public):
        problem = (
            f"The homeserver holds a cross-signing master key for {me} ({fingerprint(server.master)}) that "
            + ("Ako does not have" if ours is None else f"is not Ako's own ({fingerprint(ours.master_public)})")
            + ": someone reset it, or Ako's data folder was replaced. Ako's device stays unsigned, and Element will "
            "neither send to Ako nor show its messages. Restore Ako's cross-signing.json from a backup, or run "
            "`ako identity reset --config …` to publish Ako's identity (every user's client will say it changed)."
        )
        log.error("%s", problem)
        return Status(ours.master_public if ours else None, False, False, problem)
    if ours is None:
        ours = Identity.generate()
        save(data_dir, ours)  # before the upload: a crash in between reuses these keys
        log.info("Created Ako's cross-signing identity: master key %s (kept in %s)", fingerprint(ours.master_public), identity_file(data_dir))
    if server.master is None:
        await upload(client, ours, password)
        log.info("Published Ako's cross-signing keys for %s", me)
        server = await published(client)
    if server.device_keys is None:
        raise IdentityError(f"The homeserver has no keys for device {client.device_id} yet.")
    if not server.device_signed_by(ours.self_signing_public, me):
        await sign_device(client, ours, server.device_keys)
        log.info("Signed device %s with Ako's cross-signing identity", client.device_id)
    return Status(ours.master_public, True, True)


async def reset(client: nio.AsyncClient, data_dir: Path, password: str | None) -> Identity:
    """Publish a new identity in place of the server's. Always new: Synapse refuses a cross-signing key
    it has held before (it keeps every published key), so the old one cannot be put back. The old
    file is kept beside it as ``cross-signing.json.replaced``."""
    ours = Identity.generate()
    await upload(client, ours, password)
    old = identity_file(data_dir)
    if old.exists():
        old.replace(old.with_name(f"{FILE}.replaced"))
    save(data_dir, ours)
    server = await published(client)
    if server.device_keys is not None and not server.device_signed_by(ours.self_signing_public, client.user_id):
        await sign_device(client, ours, server.device_keys)
    return ours
