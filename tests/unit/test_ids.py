"""Time-ordered ids (version 7 UUIDs) for the rows of the order path."""

from __future__ import annotations

import uuid

from cnop_app.domain.ids import new_id, uuid7

MS = 1_796_186_500_123  # 2026-12-02, in milliseconds


def test_the_layout_is_rfc_9562_version_7_with_the_time_in_the_first_48_bits() -> None:
    value = uuid7(MS * 1_000_000 + 999_999)  # the nanoseconds below the millisecond are dropped
    assert value.version == 7
    assert value.variant == uuid.RFC_4122
    assert value.int >> 80 == MS


def test_ids_made_later_sort_later_as_text() -> None:
    ids = [str(uuid7((MS + step) * 1_000_000)) for step in range(0, 5000, 7)]
    assert sorted(ids) == ids


def test_ids_are_unique_and_read_back_as_uuids() -> None:
    ids = [new_id() for _ in range(20_000)]
    assert len(set(ids)) == len(ids)
    assert all(str(uuid.UUID(value)) == value and len(value) == 36 for value in ids)


def test_the_random_bits_differ_within_one_millisecond() -> None:
    same_ms = {uuid7(MS * 1_000_000).int & ((1 << 80) - 1) for _ in range(1000)}
    assert len(same_ms) == 1000
