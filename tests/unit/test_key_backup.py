"""The recovery key's encoding, secret storage's AES-HMAC-SHA2 and the key backup's curve25519 scheme.

Expectations from the Matrix spec (appendix "Cryptographic key representation"; "Secrets";
"Server-side key backups") and from independent implementations: vodozemac's PkDecryption (the
libolm-compatible scheme matrix-nio ships) must read what Ako writes to the backup, and
matrix-js-sdk (Element's SDK, from the Element-mode harness) Ako's recovery key and secret storage.
"""

import pytest
import vodozemac
from nio.crypto.sessions import InboundGroupSession, OutboundGroupSession

from bot import key_backup, secret_storage
from bot.secret_storage import RecoveryKeyError, SecretStorageError, b64, unb64


def test_base58_is_bitcoins():
    # the test vectors of the Base58 encoding draft (draft-msporny-base58), the alphabet the spec names
    assert secret_storage._base58_encode(b"Hello World!") == "2NEpo7TZRRrLZSi2U"
    assert secret_storage._base58_encode(bytes.fromhex("0000287fb4cd")) == "11233QC4"
    assert secret_storage._base58_decode("11233QC4") == bytes.fromhex("0000287fb4cd")


def test_a_recovery_key_is_header_key_parity_in_base58_groups_of_four():
    key = bytes(range(32))
    text = secret_storage.encode_recovery_key(key)
    groups = text.split(" ")
    assert all(len(g) == 4 for g in groups[:-1]) and len("".join(groups)) == 48
    raw = secret_storage._base58_decode("".join(groups))
    assert raw[:2] == b"\x8b\x01" and raw[2:34] == key
    parity = 0
    for byte in raw[:34]:
        parity ^= byte
    assert raw[34] == parity
    assert secret_storage.decode_recovery_key(text) == key
    assert secret_storage.decode_recovery_key("".join(groups)) == key  # spaces may be left out
    assert secret_storage.decode_recovery_key(f"  {text}\n") == key


@pytest.mark.parametrize(
    "typed, why",
    [
        ("", "it is empty"),
        ("EsT0 IlOl", "characters no recovery key has ('0', 'I', 'O', 'l')"),
        ("EsTc LW2K", "check digit does not match"),
    ],
)
def test_a_malformed_recovery_key_gets_a_sentence(typed, why):
    with pytest.raises(RecoveryKeyError) as e:
        secret_storage.decode_recovery_key(typed)
    assert why in str(e.value) and str(e.value).startswith("That is not a recovery key")


def test_one_mistyped_character_is_caught():
    text = secret_storage.encode_recovery_key(bytes(range(1, 33)))
    i = 10
    wrong = text[:i] + ("2" if text[i] != "2" else "3") + text[i + 1 :]
    with pytest.raises(RecoveryKeyError):
        secret_storage.decode_recovery_key(wrong)


def test_secret_storage_encrypts_under_the_key_and_the_mac_tells_a_wrong_key():
    key, other = b"k" * 32, b"o" * 32
    entry = secret_storage.encrypt(key, "m.cross_signing.master", "c2VjcmV0")
    assert set(entry) == {"iv", "ciphertext", "mac"} and not any(v.endswith("=") for v in entry.values())
    assert unb64(entry["iv"])[8] & 0x80 == 0  # bit 63 cleared
    assert secret_storage.decrypt(key, "m.cross_signing.master", entry) == "c2VjcmV0"
    with pytest.raises(SecretStorageError):
        secret_storage.decrypt(other, "m.cross_signing.master", entry)
    with pytest.raises(SecretStorageError):  # the name is the HKDF info: a secret moved to another name fails
        secret_storage.decrypt(key, "m.megolm_backup.v1", entry)
    description = secret_storage.describe_key(key)
    assert description["algorithm"] == "m.secret_storage.v1.aes-hmac-sha2"
    assert secret_storage.key_matches(key, description)
    assert not secret_storage.key_matches(other, description)
    assert secret_storage.key_matches(other, {"algorithm": description["algorithm"]})  # no iv/mac: assumed valid (spec)
    padded = {k: v + "=" * (-len(v) % 4) for k, v in entry.items()}  # padded base64 is accepted too
    assert secret_storage.decrypt(key, "m.cross_signing.master", padded) == "c2VjcmV0"


def room_key() -> InboundGroupSession:
    out = OutboundGroupSession()
    return InboundGroupSession(out.session_key, "ed25519ofsender", "curve25519ofsender", "!room:a.test", ["forwarder"])


def test_a_backed_up_room_key_is_read_by_vodozemac_and_restored_whole():
    private = key_backup.new_private_key()
    public = key_backup.public_key(private)
    assert public == vodozemac.Curve25519SecretKey.from_bytes(private).public_key().to_base64()
    session = room_key()
    data = key_backup.backup_data(session, public)
    assert data["first_message_index"] == 0 and data["forwarded_count"] == 1 and data["is_verified"] is False
    sd = data["session_data"]
    assert len(unb64(sd["mac"])) == 8 and len(unb64(sd["ephemeral"])) == 32

    # an independent implementation (libolm's scheme, MAC of the empty string included) decrypts it
    message = vodozemac.Message(unb64(sd["ciphertext"]), unb64(sd["mac"]), unb64(sd["ephemeral"]))
    plain = vodozemac.PkDecryption.from_key(vodozemac.Curve25519SecretKey.from_bytes(private)).decrypt(message)
    import json

    fields = json.loads(plain)
    assert fields["algorithm"] == "m.megolm.v1.aes-sha2"
    assert fields["sender_key"] == "curve25519ofsender" and fields["sender_claimed_keys"] == {"ed25519": "ed25519ofsender"}
    assert fields["forwarding_curve25519_key_chain"] == ["forwarder"]

    restored = key_backup.restored_session("!room:a.test", key_backup.decrypt(private, sd))
    assert restored.id == session.id and restored.room_id == "!room:a.test" and restored.sender_key == "curve25519ofsender"
    with pytest.raises(key_backup.KeyBackupError):
        key_backup.decrypt(key_backup.new_private_key(), sd)


def test_what_vodozemac_encrypts_ako_decrypts():
    private = key_backup.new_private_key()
    enc = vodozemac.PkEncryption.from_key(vodozemac.Curve25519SecretKey.from_bytes(private).public_key())
    message = enc.encrypt(b'{"algorithm": "m.megolm.v1.aes-sha2"}')
    sd = {"ciphertext": b64(message.ciphertext), "mac": b64(message.mac), "ephemeral": b64(message.ephemeral_key)}
    assert key_backup.decrypt(private, sd) == {"algorithm": "m.megolm.v1.aes-sha2"}


def test_only_new_room_keys_go_up_and_a_better_copy_goes_up_again(tmp_path):
    from types import SimpleNamespace

    from nio.crypto.memorystores import GroupSessionStore

    store = GroupSessionStore()
    first, second = room_key(), room_key()
    store.add(first)
    client = SimpleNamespace(olm=SimpleNamespace(inbound_group_store=store))
    uploaded = key_backup.Uploaded("1", key_backup.public_key(key_backup.new_private_key()))
    assert key_backup.new_sessions(client, uploaded) == [first]
    uploaded.keys[f"{first.room_id} {first.id}"] = first.first_known_index
    assert key_backup.new_sessions(client, uploaded) == []
    store.add(second)
    assert key_backup.new_sessions(client, uploaded) == [second]
    uploaded.keys[f"{second.room_id} {second.id}"] = 5  # held from a later message before: this copy is better
    assert key_backup.new_sessions(client, uploaded) == [second]

    uploaded.save(tmp_path)
    again = key_backup.Uploaded.load(tmp_path)
    assert again == uploaded and oct(key_backup.Uploaded.path(tmp_path).stat().st_mode & 0o777) == "0o600"


def test_element_reads_what_ako_writes_and_ako_reads_what_element_writes(tmp_path):
    """matrix-js-sdk and its Rust crypto (Element's) as the independent implementation of the recovery
    key, secret storage and the key backup's encryption."""
    import json
    import subprocess

    from tests.element_user import ELEMENT_DIR, ensure_node_modules

    ensure_node_modules()
    sdk = (ELEMENT_DIR / "node_modules" / "matrix-js-sdk" / "lib").as_uri()
    rust = (ELEMENT_DIR / "node_modules" / "@matrix-org" / "matrix-sdk-crypto-wasm" / "node.mjs").as_uri()
    script = tmp_path / "interop.mjs"
    script.write_text(
        'import fs from "node:fs";\n'
        f'import {{ decodeRecoveryKey, encodeRecoveryKey }} from "{sdk}/crypto-api/recovery-key.js";\n'
        f'import {{ calculateKeyCheck }} from "{sdk}/secret-storage.js";\n'
        f'import decrypt from "{sdk}/utils/decryptAESSecretStorageItem.js";\n'
        f'import encrypt from "{sdk}/utils/encryptAESSecretStorageItem.js";\n'
        f'import * as rust from "{rust}";\n'
        'const input = JSON.parse(fs.readFileSync(0, "utf8"));\n'
        "await rust.initAsync();\n"
        "const backup = rust.BackupDecryptionKey.fromBase64(input.backup_private);\n"
        "const sd = input.session_data;\n"
        "const key = decodeRecoveryKey(input.recovery_key);\n"
        "const out = {\n"
        "  key_hex: Buffer.from(key).toString('hex'),\n"
        "  check: await calculateKeyCheck(key, input.iv),\n"
        "  secret: await decrypt(input.encrypted, key, input.name),\n"
        "  their_key: encodeRecoveryKey(new Uint8Array(32).fill(7)),\n"
        "  their_encrypted: await encrypt('from element', key, input.name),\n"
        "  backup_public: backup.megolmV1PublicKey.publicKeyBase64,\n"
        "  backup_plain: JSON.parse(backup.decryptV1(sd.ephemeral, sd.mac, sd.ciphertext)),\n"
        "};\n"
        "console.log(JSON.stringify(out));\n"
    )
    key = bytes(range(100, 132))
    description = secret_storage.describe_key(key)
    name = "m.cross_signing.self_signing"
    private = key_backup.new_private_key()
    session = room_key()
    payload = {
        "backup_private": b64(private),
        "session_data": key_backup.backup_data(session, key_backup.public_key(private))["session_data"],
        "recovery_key": secret_storage.encode_recovery_key(key),
        "iv": description["iv"],
        "encrypted": secret_storage.encrypt(key, name, "c2VsZi1zaWduaW5nIHNlZWQ"),
        "name": name,
    }
    done = subprocess.run(["node", str(script)], input=json.dumps(payload), capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    theirs = json.loads(done.stdout)
    assert theirs["key_hex"] == key.hex()  # Element decodes Ako's recovery key to the same bytes
    assert unb64(theirs["check"]["mac"]) == unb64(description["mac"])  # and computes the same key check
    assert theirs["secret"] == "c2VsZi1zaWduaW5nIHNlZWQ"  # and decrypts Ako's secret
    assert secret_storage.decode_recovery_key(theirs["their_key"]) == bytes([7] * 32)
    assert secret_storage.decrypt(key, name, theirs["their_encrypted"]) == "from element"
    # matrix-rust-sdk (Element's crypto) derives the same backup public key and decrypts Ako's backed-up room key
    assert theirs["backup_public"] == key_backup.public_key(private)
    assert theirs["backup_plain"]["session_key"] == session.export_session(0)
    assert theirs["backup_plain"]["sender_key"] == "curve25519ofsender"


def _config(tmp_path, data, password=True):
    cfg = tmp_path / "config.toml"
    secret = 'password = "pw-restore-test"' if password else 'access_token = "syt_token_restore_test"'
    cfg.write_text(
        f'[matrix]\nhomeserver = "http://127.0.0.1:9"\nuser_id = "@ako:a.test"\n{secret}\n'
        f'[bot]\noperators = ["@it:a.test"]\ndata_dir = "{data}"\n'
    )
    return str(cfg)


def test_restore_says_what_is_wrong_before_touching_anything(tmp_path, capsys):
    """Checked before any login (the homeserver here does not even answer): each gets its sentence, exit 1."""
    from bot.cli import main as ako

    data = tmp_path / "data"
    key = secret_storage.encode_recovery_key(bytes(32))
    assert ako(["restore-keys", "--config", _config(tmp_path, data, password=False), "--recovery-key", key]) == 1
    assert "needs the account's password" in capsys.readouterr().err

    assert ako(["restore-keys", "--config", _config(tmp_path, data), "--recovery-key", "not a key"]) == 1
    assert "That is not a recovery key" in capsys.readouterr().err
    assert not data.exists()

    data.mkdir()
    (data / "cross-signing.json").write_text("{}")
    assert ako(["restore-keys", "--config", _config(tmp_path, data), "--recovery-key", key]) == 1
    err = capsys.readouterr().err
    assert "already holds a device or an identity" in err and "cross-signing.json" in err
    assert (data / "cross-signing.json").read_text() == "{}"

    (data / "ako.db").write_text("")
    assert ako(["rebuild", "--config", _config(tmp_path, data), "--recovery-key", key]) == 1
    err = capsys.readouterr().err
    assert "is not empty: a rebuild starts from an empty data folder" in err and "Move its contents away" in err
    assert (data / "ako.db").read_text() == ""


def test_after_catching_up_a_look_sees_only_the_keys_added_since():
    from types import SimpleNamespace

    from nio.crypto.memorystores import GroupSessionStore

    store = GroupSessionStore()
    old = [room_key() for _ in range(3)]
    for s in old:
        store.add(s)
    client = SimpleNamespace(olm=SimpleNamespace(inbound_group_store=store))
    uploaded = key_backup.Uploaded("1", key_backup.public_key(key_backup.new_private_key()))
    arrivals = key_backup.Arrivals()
    assert set(key_backup.new_sessions(client, uploaded, arrivals)) == set(old)  # the first look walks the store
    assert set(key_backup.new_sessions(client, uploaded, arrivals)) == set(old)  # not caught up (an upload failed): again
    arrivals.caught_up()
    for s in old:  # as if uploaded
        uploaded.keys[f"{s.room_id} {s.id}"] = s.first_known_index
    new = room_key()
    store.add(new)  # as nio adds a key it made or received
    looked = key_backup.new_sessions(client, uploaded, arrivals)
    assert looked == [new]
    late = room_key()
    store.add(late)  # arrives while the upload of the last look is on its way
    arrivals.caught_up()
    assert key_backup.new_sessions(client, uploaded, arrivals) == [late]
    arrivals.caught_up()
    assert key_backup.new_sessions(client, uploaded, arrivals) == []
    fresh = GroupSessionStore()  # nio made a new store: it is walked whole again
    fresh.add(new)
    client.olm.inbound_group_store = fresh
    assert key_backup.new_sessions(client, uploaded, arrivals) == [new]
