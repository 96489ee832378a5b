"""Cross-signing (issue 13): Ako's identity signs its device as the Matrix spec says, and only devices
cross-signed by their owner get room keys when ``exclude_insecure_devices`` is on.

Signatures are checked here with signedjson's own verification, and the expected decisions are
written from the README's encryption section, not computed from bot/device_trust.py."""

from __future__ import annotations

import json
import stat

import pytest
from signedjson.key import decode_verify_key_base64
from signedjson.sign import SignatureVerifyException, verify_signed_json

from bot import identity
from bot.device_trust import Trust, decide, identities_from_query

ANA = "@ana:school-b.example"
BOT = "@ako:school-a.example"
SCHOOLS = frozenset({"school-a.example", "school-b.example"})


def verify_key(public: str):
    return decode_verify_key_base64("ed25519", public, public)


def device_keys(user_id: str, device_id: str, ed25519: str = "EDKEY") -> dict:
    return {
        "user_id": user_id,
        "device_id": device_id,
        "algorithms": ["m.olm.v1.curve25519-aes-sha2", "m.megolm.v1.aes-sha2"],
        "keys": {f"curve25519:{device_id}": "CURVE", f"ed25519:{device_id}": ed25519},
        "signatures": {user_id: {f"ed25519:{device_id}": "self-signature"}},
    }


def query_answer(user_id: str, ident: identity.Identity, devices: dict[str, dict]) -> dict:
    """A /keys/query answer as a homeserver gives it for one user."""
    return {
        "device_keys": {user_id: devices},
        "master_keys": {user_id: ident.published(user_id, "master")},
        "self_signing_keys": {user_id: ident.published(user_id, "self_signing")},
    }


def test_the_uploaded_keys_are_signed_as_the_spec_says():
    ident = identity.Identity.generate()
    body = ident.upload_body(BOT)
    master = body["master_key"]
    assert master["usage"] == ["master"] and master["user_id"] == BOT
    assert master["keys"] == {f"ed25519:{ident.master_public}": ident.master_public}
    for name, usage in (("self_signing_key", "self_signing"), ("user_signing_key", "user_signing")):
        key = body[name]
        assert key["usage"] == [usage]
        verify_signed_json(key, BOT, verify_key(ident.master_public))  # raises if not signed by the master key
    assert len({ident.master_public, ident.self_signing_public, identity.public(ident.user_signing)}) == 3


def test_the_device_signature_is_by_the_self_signing_key_and_keeps_the_devices_own():
    ident = identity.Identity.generate()
    signed = ident.sign_device(BOT, device_keys(BOT, "AKODEV"))
    verify_signed_json(signed, BOT, verify_key(ident.self_signing_public))
    assert "ed25519:AKODEV" in signed["signatures"][BOT]
    with pytest.raises(SignatureVerifyException):
        verify_signed_json(signed, BOT, verify_key(ident.master_public))


def test_the_identity_is_kept_owner_readable_and_read_back_the_same(tmp_path):
    ident = identity.Identity.generate()
    identity.save(tmp_path, ident)
    path = identity.identity_file(tmp_path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    again = identity.load(tmp_path)
    assert again.master_public == ident.master_public
    assert again.self_signing_public == ident.self_signing_public
    assert "crypto" not in str(path.relative_to(tmp_path))  # a lost crypto store keeps the identity
    path.write_text(json.dumps({"master": "nonsense"}))
    with pytest.raises(identity.IdentityError, match="restore it from a backup"):
        identity.load(tmp_path)


def test_only_devices_signed_by_the_owners_self_signing_key_count():
    ana = identity.Identity.generate()
    other = identity.Identity.generate()
    signed = ana.sign_device(ANA, device_keys(ANA, "PHONE", "ED-PHONE"))
    forged = other.sign_device(ANA, device_keys(ANA, "EVIL", "ED-EVIL"))  # signed by someone else's key
    plain = device_keys(ANA, "LAPTOP", "ED-LAPTOP")
    found = identities_from_query(query_answer(ANA, ana, {"PHONE": signed, "EVIL": forged, "LAPTOP": plain}))[ANA]
    assert found.master == ana.master_public
    assert found.signed("PHONE", "ED-PHONE")
    assert not found.signed("PHONE", "ED-OTHER")  # the key nio holds must be the one that was signed
    assert not found.signed("EVIL", "ED-EVIL")
    assert not found.signed("LAPTOP", "ED-LAPTOP")


def test_a_self_signing_key_not_signed_by_the_master_key_signs_nothing():
    ana = identity.Identity.generate()
    rogue = identity.Identity.generate()
    answer = query_answer(ANA, ana, {"PHONE": ana.sign_device(ANA, device_keys(ANA, "PHONE", "ED-PHONE"))})
    answer["master_keys"][ANA] = rogue.published(ANA, "master")  # the self-signing key is not signed by this one
    assert not identities_from_query(answer)[ANA].signed("PHONE", "ED-PHONE")


def rule(user, device, ed, found, *, guests=False, blocked=frozenset()):
    return decide(
        user, device, ed, registered_servers=SCHOOLS, blocked_servers=blocked, allow_guests=guests,
        bot_user_id=BOT, exclude_insecure=True, identity=found,
    )[0]


def test_with_exclude_insecure_devices_only_cross_signed_devices_of_registered_schools_get_keys():
    ana = identity.Identity.generate()
    answer = query_answer(ANA, ana, {
        "PHONE": ana.sign_device(ANA, device_keys(ANA, "PHONE", "ED-PHONE")),
        "OLD": device_keys(ANA, "OLD", "ED-OLD"),
    })
    found = identities_from_query(answer)[ANA]
    assert rule(ANA, "PHONE", "ED-PHONE", found) is Trust.TRUST
    assert rule(ANA, "OLD", "ED-OLD", found) is Trust.BLOCK  # not cross-signed by its owner
    assert rule(ANA, "PHONE", "ED-PHONE", None) is Trust.BLOCK  # identity unknown: fail closed
    assert rule(ANA, "PHONE", "ED-PHONE", found, blocked=frozenset({"school-b.example"})) is Trust.BLOCK

    carl = "@carl:rogue.example"
    rogue = identity.Identity.generate()
    carls = identities_from_query(query_answer(carl, rogue, {"X": rogue.sign_device(carl, device_keys(carl, "X", "ED-X"))}))[carl]
    assert rule(carl, "X", "ED-X", carls) is Trust.BLOCK  # cross-signed, but no registered school's user
    assert rule(carl, "X", "ED-X", carls, guests=True) is Trust.TRUST
    assert rule(carl, "X", "ED-X", carls, guests=True, blocked=frozenset({"rogue.example"})) is Trust.BLOCK


def test_status_lines_name_the_fingerprint_and_what_is_wrong():
    ident = identity.Identity.generate()
    lines = identity.Status(ident.master_public, False, False, "someone reset it").lines("AKODEV")
    assert identity.fingerprint(ident.master_public) in lines[0]
    assert "NOT signed" in lines[1] and "does NOT hold" in lines[2] and lines[3] == "someone reset it"
