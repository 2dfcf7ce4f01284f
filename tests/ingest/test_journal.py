"""The evaluation journal on its own: torn tails, following the writer across segments, releasing, and not taking
a reading twice when the broker delivers again what was journalled just before a crash."""

from __future__ import annotations

from pathlib import Path

import pytest

from devices.readings import Reading
from ingest import journal as journal_module
from ingest.journal import Journal, decode_batch


def _batch(start: int, count: int) -> list[Reading]:
    return [Reading("soil", "bed-01-soil", "bed-01", None, start + i, {"soil_moisture_pct": 30.0}) for i in
            range(count)]


def test_a_record_cut_short_by_a_crash_is_dropped_and_the_rest_read_in_order(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "journal")
    for n in range(3):
        journal.append(_batch(n * 10, 10))
    journal.close()
    segment = journal.segments()[-1]
    with segment.open("ab") as handle:
        handle.write(b"\x00\x00\x00\x00\x00\x00\x00\x04partial")  # a record header and half a payload
    reopened = Journal(tmp_path / "journal")
    assert reopened.last_seq == 3
    reader = reopened.reader(1)
    assert [r.seq for r in reader.available()] == [2, 3]
    reader.close()
    third = reopened.reader(2)
    record = third.next(1.0)
    assert record is not None and [r.ts_ms for r in decode_batch(record.payload)] == list(range(20, 30))
    third.close()
    reopened.close()


def test_the_reader_follows_the_writer_across_segments_and_release_frees_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(journal_module, "SEGMENT_BYTES", 200)  # a new segment every batch or two
    journal = Journal(tmp_path / "journal")
    try:
        reader = journal.reader(0)
        seen = []
        for n in range(12):
            journal.append(_batch(n * 5, 5))
            record = reader.next(1.0)
            assert record is not None
            seen.append(record.seq)
        assert seen == list(range(1, 13)) and len(journal.segments()) > 3
        before = len(journal.segments())
        assert journal.release_through(8) > 0
        assert len(journal.segments()) < before
        rest = journal.reader(8)
        assert [r.seq for r in rest.available()] == [9, 10, 11, 12]
        rest.close()
        reader.close()
    finally:
        journal.close()


def test_readings_journalled_just_before_a_crash_are_not_journalled_twice(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "journal", max_pending_readings=1000)
    journal.append(_batch(0, 10))
    journal.close()  # killed before the acknowledgement: the broker will deliver these ten again
    restarted = Journal(tmp_path / "journal", max_pending_readings=1000)
    restarted.track_from(0)
    assert restarted.pending_readings == 10
    seq = restarted.append(_batch(0, 10))  # delivered again
    assert seq == 1 and restarted.last_seq == 1 and restarted.pending_readings == 10  # nothing new appended
    assert restarted.append(_batch(5, 10)) == 2  # half old, half new: only the new half is appended
    reader = restarted.reader(1)
    record = reader.next(1.0)
    assert record is not None and [r.ts_ms for r in decode_batch(record.payload)] == list(range(10, 15))
    reader.close()
    restarted.close()
