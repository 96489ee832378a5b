"""One mapper turns a database row into a record: each field from the column of its name, read as
its type says."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

import pytest

from storage.models import ClassRole, from_row


@dataclass(frozen=True)
class Sample:
    id: int
    when: datetime
    until: datetime | None
    flag: bool
    role: ClassRole
    maybe_role: ClassRole | None
    extra: dict
    note: str | None


ROW = {
    "id": 7,
    "when": "2026-03-02T09:30:00.000000+00:00",
    "until": None,
    "flag": 1,
    "role": "teacher",
    "maybe_role": None,
    "extra": '{"a": [1, 2]}',
    "note": None,
}


def test_each_field_is_read_as_its_type_says():
    record = from_row(Sample, ROW)
    assert record == Sample(
        id=7,
        when=datetime(2026, 3, 2, 9, 30, tzinfo=timezone.utc),
        until=None,
        flag=True,
        role=ClassRole.TEACHER,
        maybe_role=None,
        extra={"a": [1, 2]},
        note=None,
    )
    assert type(record.flag) is bool and type(record.role) is ClassRole


def test_given_fields_are_taken_as_they_are_and_their_columns_not_read():
    row = {k: v for k, v in ROW.items() if k != "extra"}  # no such column: the caller supplies it
    assert from_row(Sample, row, extra={"b": 1}, flag=False).extra == {"b": 1}
    assert from_row(Sample, row, extra={}, flag=False).flag is False


def test_a_missing_column_fails_loudly():
    row = {k: v for k, v in ROW.items() if k != "note"}
    with pytest.raises(KeyError):
        from_row(Sample, row)
