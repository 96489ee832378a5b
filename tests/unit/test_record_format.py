"""The record format in the rooms: encode/decode/split/join read back exactly what was written."""

import json

import pytest

from storage import record_format as rf


def _row(text: str) -> dict:
    return {"id": 7, "assignment_id": 3, "learner": "@ana:school-a.example", "version": 2, "text": text, "file_url": None}


def test_a_small_batch_is_one_object_and_reads_back():
    changes = [rf.put(17, "submissions", _row("my findings")), rf.delete(18, "extensions", {"assignment_id": 3, "learner": "@bo:b"})]
    objects = rf.split(changes)
    assert objects == [{"v": 1, "changes": changes}]
    content = rf.event_content(objects[0])
    assert content == {"nz.ako.record": {"v": 1, "changes": changes}}
    assert rf.join(rf.decode(content)) == changes


def test_a_big_batch_is_split_with_every_change_whole_and_in_order():
    changes = [rf.put(i, "topic_replies", {"event_id": f"$e{i}", "sender": "@a:b", "n": "x" * 500}) for i in range(1, 400)]
    objects = rf.split(changes, limit=10_000)
    assert len(objects) > 15
    for obj in objects:
        assert rf.size(obj) <= 10_000
        assert all("part" not in c for c in obj["changes"])
    for obj, following in zip(objects, objects[1:]):  # full: the next change would not have fitted
        assert rf.size(rf.encode(obj["changes"] + following["changes"][:1])) > 10_000
    read = [c for obj in objects for c in rf.decode(rf.event_content(obj))]
    assert read == changes
    assert rf.join(reversed(read)) == changes  # rooms read in any order: seq puts them back


@pytest.mark.parametrize("text", [
    "a" * 150_000,
    "Kia ora, e hoa mā! 🌿 \"quoted\"\n\t\\ ü" * 4000,  # non-ASCII, an emoji outside the BMP, escapes
    "🌿" * 30_000,  # 12 bytes each once escaped
])
def test_one_row_bigger_than_an_event_is_cut_into_parts_that_join_back_exactly(text):
    change = rf.put(42, "submissions", _row(text))
    objects = rf.split([rf.put(41, "grades", {"id": 1}), change, rf.put(43, "grades", {"id": 2})])
    assert len(objects) >= 2
    for obj in objects:
        assert rf.size(obj) <= rf.MAX_BYTES
        # what an event's content really is on the wire, either way of writing JSON
        assert len(json.dumps(rf.event_content(obj))) <= rf.MAX_BYTES + 20
    read = [c for obj in objects for c in rf.decode(rf.event_content(obj))]
    assert any("part" in c for c in read)
    joined = rf.join(read)
    assert [c["seq"] for c in joined] == [41, 42, 43]
    assert joined[1] == change
    assert joined[1]["row"]["text"] == text


def test_a_missing_part_is_named_not_guessed():
    change = rf.put(5, "submissions", _row("z" * 100_000))
    pieces = rf.parts(change)
    assert len(pieces) >= 3
    with pytest.raises(rf.RecordFormatError, match="Change 5 is missing parts"):
        rf.join(pieces[:1] + pieces[2:])


def test_the_same_change_twice_counts_once_but_two_different_ones_under_one_seq_fail():
    a = rf.put(3, "staff", {"user_id": "@t:a"})
    assert rf.join([a, dict(a)]) == [a]
    with pytest.raises(rf.RecordFormatError, match="seq 3"):
        rf.join([a, rf.put(3, "staff", {"user_id": "@u:a"})])


def test_content_without_a_record_carries_nothing_and_malformed_ones_are_refused():
    assert rf.decode({"msgtype": "m.text", "body": "hi"}) == []
    with pytest.raises(rf.RecordFormatError):
        rf.decode({"nz.ako.record": {"v": 2, "changes": []}})
    with pytest.raises(rf.RecordFormatError):
        rf.decode({"nz.ako.record": {"v": 1, "changes": [{"seq": "1", "table": "x", "op": "put", "row": {}}]}})
    with pytest.raises(rf.RecordFormatError):
        rf.decode({"nz.ako.record": {"v": 1, "changes": [{"seq": 1, "table": "x", "op": "upsert", "row": {}}]}})


def test_fits_says_whether_a_message_can_carry_the_object():
    small = rf.encode([rf.put(1, "grades", {"id": 1})])
    assert rf.fits({"msgtype": "m.notice", "body": "Graded."}, small)
    assert not rf.fits({"msgtype": "m.notice", "body": "x" * rf.MAX_BYTES}, small)
