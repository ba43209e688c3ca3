"""Tests for the data-directory files: line format, fenced output, logs and state."""

from __future__ import annotations

import dataclasses
import enum
import json
import logging
import math
import multiprocessing
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cluster import files
from cluster.core.messages import Entry
from cluster.files import (
    BackupFile,
    DataFileError,
    EventLog,
    OutputFile,
    StateFile,
    WriteAheadLog,
    format_entry,
    parse_entry,
    read_entries,
    read_events,
)

FIELD_INTS = st.integers(min_value=0, max_value=files.MAX_FIELD_INT)

TRICKY_TEXTS = [
    "",
    "plain",
    "two\nlines",
    "tab\there",
    "carriage\rreturn",
    "back\\slash",
    "literal \\n not a newline",
    "\\",
    "ends with backslash\\",
    "\\\\t",
    "non-BMP \U0001f600 and é",
    "\n\t\r\\",
]


def entry(seq: int, term: int = 1, text: str = "") -> Entry:
    return Entry(seq=seq, term=term, lamport=seq * 10, client_id=1, request_id=seq, text=text)


def entries(first: int, last: int, term: int = 1) -> list[Entry]:
    return [entry(seq, term, f"message {seq}") for seq in range(first, last + 1)]


# --- Line format ---------------------------------------------------------------------


@given(text=st.text())
def test_escape_round_trip(text: str) -> None:
    assert files.unescape_text(files.escape_text(text)) == text


@given(text=st.text())
def test_escape_single_field(text: str) -> None:
    escaped = files.escape_text(text)

    assert "\t" not in escaped
    assert "\n" not in escaped
    assert "\r" not in escaped


@given(
    seq=FIELD_INTS, term=FIELD_INTS, lamport=FIELD_INTS, client_id=FIELD_INTS,
    request_id=FIELD_INTS, text=st.text(),
)
def test_line_round_trip(
    seq: int, term: int, lamport: int, client_id: int, request_id: int, text: str
) -> None:
    original = Entry(seq, term, lamport, client_id, request_id, text)

    assert parse_entry(format_entry(original), "x.txt", 1) == original


@pytest.mark.parametrize("text", TRICKY_TEXTS, ids=repr)
def test_tricky_text_round_trip(text: str, tmp_path: Path) -> None:
    path = tmp_path / "backup_1.txt"
    path.write_text(format_entry(entry(1, text=text)) + format_entry(entry(2)), encoding="utf-8")

    loaded = read_entries(path)

    assert loaded == [entry(1, text=text), entry(2)]


def test_newline_cannot_forge_line(tmp_path: Path) -> None:
    forged = f"hello\n{format_entry(entry(2, term=9, text='forged'))}"
    path = tmp_path / "output.txt"

    path.write_text(format_entry(entry(1, text=forged)), encoding="utf-8")

    assert read_entries(path) == [entry(1, text=forged)]


def test_format_entry_layout() -> None:
    line = format_entry(Entry(7, 2, 31, 4, 5, "a\tb\\c\nd\re"))

    assert line == "7\t2\t31\t4\t5\ta\\tb\\\\c\\nd\\re\n"


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("1\t1\t1\t1\t1\n", "expected 6 tab-separated fields"),
        ("1\t1\t1\t1\t1\ta\tb\n", "found 7"),
        ("1\tx\t1\t1\t1\ta\n", "term must be a non-negative decimal integer"),
        ("-1\t1\t1\t1\t1\ta\n", "seq must be a non-negative decimal integer"),
        ("1\t1\t+1\t1\t1\ta\n", "lamport must be a non-negative decimal integer"),
        ("1\t1\t1\t\u0661\t1\ta\n", "client_id must be"),
        ("1\t1\t1\t1\t99999999999999999999\ta\n", "request_id must be"),
        ("1\t1\t1\t1\t9223372036854775808\ta\n", "exceeds"),
        ("1\t1\t1\t1\t1\tbad \\x escape\n", "invalid escape '\\\\x'"),
        ("1\t1\t1\t1\t1\ttrailing\\\n", "invalid escape '\\\\'"),
        ("1\t1\t1\t1\t1\tcrlf\r\n", "unescaped carriage return"),
    ],
    ids=[
        "too_few", "too_many", "not_integer", "negative", "plus_sign", "arabic_digit",
        "too_long", "beyond_64_bits", "bad_escape", "trailing_backslash", "crlf",
    ],
)
def test_parse_error_names_line(line: str, reason: str) -> None:
    with pytest.raises(DataFileError) as caught:
        parse_entry(line, "data/output.txt", 12)

    assert str(caught.value).startswith("data/output.txt:12: ")
    assert reason in str(caught.value)


def test_read_error_names_line(tmp_path: Path) -> None:
    path = tmp_path / "backup_2.txt"
    path.write_text(format_entry(entry(1)) + "2\t1\t1\t1\n", encoding="utf-8")

    with pytest.raises(DataFileError, match=f"^{path}:2: expected 6"):
        read_entries(path)


def test_read_invalid_utf8(tmp_path: Path) -> None:
    path = tmp_path / "backup_2.txt"
    path.write_bytes(b"1\t1\t1\t1\t1\t\xff\n")

    with pytest.raises(DataFileError, match=f"^{path}:1: line is not valid UTF-8"):
        read_entries(path)


def test_read_partial_line_ignored(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "backup_1.txt"
    path.write_text(format_entry(entry(1)) + "2\t1\t2", encoding="utf-8")

    with caplog.at_level(logging.WARNING, logger="cluster.files"):
        loaded = read_entries(path)

    assert loaded == [entry(1)]
    assert "partial last line of 5 bytes" in caplog.text


def test_read_missing_file(tmp_path: Path) -> None:
    assert read_entries(tmp_path / "absent.txt") == []


def test_file_names(tmp_path: Path) -> None:
    assert files.output_path(tmp_path) == tmp_path / "output.txt"
    assert files.backup_path(tmp_path, 2) == tmp_path / "backup_2.txt"
    assert files.wal_path(tmp_path, 2) == tmp_path / "store_2.wal"
    assert files.sync_state_path(tmp_path, 3) == tmp_path / "sync_3.state.json"
    assert files.store_state_path(tmp_path, 3) == tmp_path / "store_3.state.json"
    assert files.events_path(tmp_path, "sync", 4) == tmp_path / "events_sync_4.jsonl"
    assert files.client_log_path(tmp_path, 5) == tmp_path / "client_5.jsonl"


# --- OutputFile ----------------------------------------------------------------------


def test_output_first_append(tmp_path: Path) -> None:
    output = OutputFile(tmp_path)

    decision = output.append(1, entries(1, 3))

    assert decision.accepted
    assert decision.last_seq == 3
    assert read_entries(files.output_path(tmp_path)) == entries(1, 3)


def test_output_fence_rejects_lower_term(tmp_path: Path) -> None:
    old_leader = OutputFile(tmp_path)
    new_leader = OutputFile(tmp_path)
    old_leader.append(1, entries(1, 2))

    fenced = new_leader.raise_fence(2)
    late = old_leader.append(1, entries(3, 4))

    assert fenced.accepted
    assert not late.accepted
    assert late.fence_term == 2
    assert read_entries(files.output_path(tmp_path)) == entries(1, 2)


def test_output_fence_file_content(tmp_path: Path) -> None:
    OutputFile(tmp_path).raise_fence(5)

    assert files.output_fence_path(tmp_path).read_text() == "5\n"


def test_output_lower_fence_rejected(tmp_path: Path) -> None:
    output = OutputFile(tmp_path)
    output.raise_fence(5)

    decision = output.raise_fence(4)

    assert not decision.accepted
    assert files.output_fence_path(tmp_path).read_text() == "5\n"


def test_output_append_raises_fence(tmp_path: Path) -> None:
    output = OutputFile(tmp_path)

    output.append(3, entries(1, 1))

    assert output.read_state().fence_term == 3


def test_output_skips_present_entries(tmp_path: Path) -> None:
    output = OutputFile(tmp_path)
    output.append(1, entries(1, 3))

    decision = output.append(1, entries(2, 5))

    assert decision.entries == tuple(entries(4, 5))
    assert read_entries(files.output_path(tmp_path)) == entries(1, 5)


def test_output_stops_at_gap(tmp_path: Path) -> None:
    output = OutputFile(tmp_path)
    output.append(1, entries(1, 2))

    decision = output.append(1, [*entries(3, 4), *entries(6, 7)])

    assert decision.last_seq == 4
    assert read_entries(files.output_path(tmp_path)) == entries(1, 4)


def test_output_partial_line_repaired(tmp_path: Path) -> None:
    path = files.output_path(tmp_path)
    path.write_text(format_entry(entry(1)) + "2\t1\t20\t1", encoding="utf-8")

    decision = OutputFile(tmp_path).append(1, [entry(2), entry(3)])

    assert decision.last_seq == 3
    assert read_entries(path) == [entry(1), entry(2), entry(3)]


def test_output_sees_other_writer(tmp_path: Path) -> None:
    first = OutputFile(tmp_path)
    second = OutputFile(tmp_path)
    first.append(1, entries(1, 2))
    second.append(1, entries(1, 4))

    decision = first.append(1, entries(1, 6))

    assert decision.entries == tuple(entries(5, 6))
    assert read_entries(files.output_path(tmp_path)) == entries(1, 6)


def test_output_long_last_line(tmp_path: Path) -> None:
    """The backwards search for the last line crosses several read chunks."""
    output = OutputFile(tmp_path)
    long_text = "\n" * (files._TAIL_CHUNK_BYTES)  # escapes to twice the chunk size
    output.append(1, [entry(1), entry(2, text=long_text)])

    decision = OutputFile(tmp_path).append(1, [entry(3)])

    assert decision.entries == (entry(3),)


def test_output_corrupt_last_line(tmp_path: Path) -> None:
    path = files.output_path(tmp_path)
    path.write_text(format_entry(entry(1)) + format_entry(entry(2)) + "3\tx\n", encoding="utf-8")

    with pytest.raises(DataFileError, match=f"^{path}:3: expected 6"):
        OutputFile(tmp_path).append(1, [entry(4)])


def test_output_corrupt_fence(tmp_path: Path) -> None:
    files.output_fence_path(tmp_path).write_text("three\n")

    with pytest.raises(DataFileError, match=r"output\.fence: expected a decimal term"):
        OutputFile(tmp_path).raise_fence(1)


def run_appender(data_dir: str, term: int, fence_after: int, ready: Any, results: Any) -> None:
    """Append entries for `term` in small batches, as a leader process does.

    The old leader (`fence_after` = 0) waits for `ready`, then appends until
    the fence rejects it. The new leader sets `ready`, waits until the file
    has `fence_after` lines, raises the fence and appends 100 entries beyond
    the last line it found, then stops.
    """
    output = OutputFile(data_dir)
    deadline = time.monotonic() + 60
    stop_after = 10**9
    if fence_after:
        ready.set()
        while output.read_state().last_seq < fence_after:
            if time.monotonic() > deadline:
                results.put(("timeout", term, 0))
                return
        fence = output.raise_fence(term)
        results.put(("fenced", term, fence.last_seq))
        stop_after = fence.last_seq + 100
    elif not ready.wait(timeout=60):
        results.put(("timeout", term, 0))
        return

    next_seq = 1
    while next_seq <= stop_after and time.monotonic() < deadline:
        last = min(next_seq + 2, stop_after)
        batch = [entry(seq, term, f"term {term}") for seq in range(next_seq, last + 1)]
        decision = output.append(term, batch)
        if not decision.accepted:
            results.put(("rejected", term, decision.last_seq))
            return
        next_seq = decision.last_seq + 1
    results.put(("done", term, next_seq - 1))


def test_output_two_processes(tmp_path: Path) -> None:
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    ready = context.Event()
    old_leader = context.Process(
        target=run_appender, args=(str(tmp_path), 1, 0, ready, results)
    )
    new_leader = context.Process(
        target=run_appender, args=(str(tmp_path), 2, 30, ready, results)
    )

    old_leader.start()
    new_leader.start()
    reports = {}
    for _ in range(3):
        kind, term, seq = results.get(timeout=90)
        reports[(kind, term)] = seq
    old_leader.join(timeout=30)
    new_leader.join(timeout=30)

    lines = read_entries(files.output_path(tmp_path))
    fence_seq = reports[("fenced", 2)]
    assert old_leader.exitcode == 0
    assert new_leader.exitcode == 0
    assert ("rejected", 1) in reports
    assert fence_seq >= 30
    assert reports[("done", 2)] == fence_seq + 100
    assert [line.seq for line in lines] == list(range(1, fence_seq + 101))
    assert all(line.term == 1 for line in lines[:fence_seq])
    assert all(line.term == 2 for line in lines[fence_seq:])


# --- Store node files -------------------------------------------------------------------


def test_wal_append_reload(tmp_path: Path) -> None:
    wal = WriteAheadLog(tmp_path / "store_1.wal")
    wal.load()

    wal.apply(0, entries(1, 3))
    wal.apply(3, entries(4, 5))

    assert WriteAheadLog(wal.path).load() == entries(1, 5)


def test_wal_truncate_append_reload(tmp_path: Path) -> None:
    wal = WriteAheadLog(tmp_path / "store_1.wal")
    wal.load()
    wal.apply(0, entries(1, 5))

    wal.apply(2, entries(3, 4, term=2))

    assert WriteAheadLog(wal.path).load() == [*entries(1, 2), *entries(3, 4, term=2)]
    assert len(wal) == 4


def test_wal_truncate_only(tmp_path: Path) -> None:
    wal = WriteAheadLog(tmp_path / "store_1.wal")
    wal.load()
    wal.apply(0, entries(1, 5))

    wal.apply(1, [])

    assert WriteAheadLog(wal.path).load() == entries(1, 1)


def test_wal_apply_after_reload(tmp_path: Path) -> None:
    path = tmp_path / "store_1.wal"
    first = WriteAheadLog(path)
    first.load()
    first.apply(0, entries(1, 4))
    second = WriteAheadLog(path)
    second.load()

    second.apply(2, entries(3, 3, term=5))

    assert WriteAheadLog(path).load() == [*entries(1, 2), *entries(3, 3, term=5)]


def test_wal_apply_many_merges(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    wal = WriteAheadLog(tmp_path / "store_1.wal")
    wal.load()
    wal.apply(0, entries(1, 4))
    fsyncs = _count_fsyncs(monkeypatch)

    wal.apply_many([
        (4, entries(5, 6)),
        (5, entries(6, 7, term=2)),
        (2, entries(3, 3, term=3)),
        (3, entries(4, 4, term=3)),
    ])

    assert len(fsyncs) == 1
    assert WriteAheadLog(wal.path).load() == [*entries(1, 2), *entries(3, 4, term=3)]


def test_wal_keep_beyond_log(tmp_path: Path) -> None:
    wal = WriteAheadLog(tmp_path / "store_1.wal")
    wal.load()

    with pytest.raises(ValueError, match="cannot keep 2 entries of a log of 0"):
        wal.apply(2, entries(3, 3))


def test_wal_wrong_sequence(tmp_path: Path) -> None:
    wal = WriteAheadLog(tmp_path / "store_1.wal")
    wal.load()

    with pytest.raises(ValueError, match="sequence number 2 cannot be line 1"):
        wal.apply(0, entries(2, 2))


def test_wal_needs_load(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="call load"):
        WriteAheadLog(tmp_path / "store_1.wal").apply(0, entries(1, 1))


def test_wal_partial_line_repaired(tmp_path: Path) -> None:
    path = tmp_path / "store_1.wal"
    path.write_text(format_entry(entry(1)) + "2\t1", encoding="utf-8")
    wal = WriteAheadLog(path)

    loaded = wal.load()
    wal.apply(1, [entry(2)])

    assert loaded == [entry(1)]
    assert WriteAheadLog(path).load() == [entry(1), entry(2)]


def test_wal_sequence_gap_rejected(tmp_path: Path) -> None:
    path = tmp_path / "store_1.wal"
    path.write_text(format_entry(entry(1)) + format_entry(entry(3)), encoding="utf-8")

    with pytest.raises(DataFileError, match=":2: expected sequence number 2, found 3"):
        WriteAheadLog(path).load()


def test_backup_append_reload(tmp_path: Path) -> None:
    backup = BackupFile(tmp_path / "backup_1.txt")
    backup.load()

    backup.append(entries(1, 2))
    backup.append(entries(3, 3))

    assert BackupFile(backup.path).load() == entries(1, 3)


def _count_fsyncs(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Record the descriptor of every fsync and fdatasync call from now on."""
    calls: list[int] = []
    for name in ("fsync", "fdatasync"):
        real = getattr(os, name, None)
        if real is None:
            continue

        def counted(fd: int, real: Callable[[int], None] = real) -> None:
            calls.append(fd)
            real(fd)

        monkeypatch.setattr(os, name, counted)
    return calls


def test_backup_append_defers_fsync_until_sync(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    backup = BackupFile(tmp_path / "backup_1.txt")
    backup.load()
    backup.append(entries(1, 1))
    fsyncs = _count_fsyncs(monkeypatch)

    backup.append(entries(2, 3), durable=False)

    assert fsyncs == []
    assert backup.unsynced
    assert BackupFile(backup.path).load() == entries(1, 3)
    backup.sync()
    assert len(fsyncs) == 1
    assert not backup.unsynced
    backup.sync()
    assert len(fsyncs) == 1


def test_durable_append_syncs_deferred_writes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    backup = BackupFile(tmp_path / "backup_1.txt")
    backup.load()
    backup.append(entries(1, 1), durable=False)
    fsyncs = _count_fsyncs(monkeypatch)

    backup.append(entries(2, 2))

    assert len(fsyncs) == 1
    assert not backup.unsynced


def test_short_writes_are_completed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """When os.write writes fewer bytes than requested, the log and the output file still get every byte."""
    real_write = os.write

    def one_byte(fd: int, data: Any) -> int:
        return real_write(fd, bytes(data[:1]))

    wal = WriteAheadLog(tmp_path / "store_1.wal")
    wal.load()
    monkeypatch.setattr(os, "write", one_byte)
    wal.apply(0, entries(1, 3))
    OutputFile(tmp_path).append(1, entries(1, 2))
    monkeypatch.undo()

    assert WriteAheadLog(wal.path).load() == entries(1, 3)
    assert read_entries(tmp_path / "output.txt") == entries(1, 2)


def test_backup_prefix_of_wal(tmp_path: Path) -> None:
    wal = WriteAheadLog(tmp_path / "store_1.wal")
    wal.load()
    wal.apply(0, entries(1, 5))
    backup = BackupFile(tmp_path / "backup_1.txt")
    backup.load()
    backup.append(entries(1, 3))

    reloaded_wal = WriteAheadLog(wal.path)
    log = reloaded_wal.load()
    reloaded = BackupFile(backup.path)

    assert reloaded.load_prefix_of(reloaded_wal, log) == 3
    assert len(reloaded) == 3
    reloaded.append(entries(4, 4))
    assert BackupFile(backup.path).load() == entries(1, 4)


def test_backup_prefix_reads_bytes_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A backup file that is a byte prefix of the write-ahead log is counted, not parsed again."""
    wal = WriteAheadLog(tmp_path / "store_1.wal")
    wal.load()
    wal.apply(0, entries(1, 5))
    (tmp_path / "backup_1.txt").write_text("".join(map(format_entry, entries(1, 4))), encoding="utf-8")
    log = WriteAheadLog(wal.path).load()

    def no_parse(*_args: Any) -> None:
        raise AssertionError("the backup file was parsed")

    monkeypatch.setattr(files, "_scan", no_parse)

    assert BackupFile(tmp_path / "backup_1.txt").load_prefix_of(wal, log) == 4


def test_backup_prefix_same_entries(tmp_path: Path) -> None:
    """A backup whose lines differ in bytes but hold the same entries, e.g. with leading zeros, is accepted."""
    wal = WriteAheadLog(tmp_path / "store_1.wal")
    wal.load()
    wal.apply(0, entries(1, 3))
    path = tmp_path / "backup_1.txt"
    path.write_text("01\t1\t10\t1\t1\tmessage 1\n", encoding="utf-8")

    assert BackupFile(path).load_prefix_of(wal, entries(1, 3)) == 1


@pytest.mark.parametrize(("content", "problem"), [
    ("".join(map(format_entry, entries(1, 4))), r"holds 4 committed entries, but \S+ holds only 3\. Restore"),
    (format_entry(entry(1, text="message 1")) + format_entry(entry(2, term=2, text="message 2")),
     r"differs from \S+ at sequence number [12]\. Restore"),
], ids=["longer", "different"])
def test_backup_not_prefix_rejected(tmp_path: Path, content: str, problem: str) -> None:
    wal = WriteAheadLog(tmp_path / "store_1.wal")
    wal.load()
    wal.apply(0, entries(1, 3))
    path = tmp_path / "backup_1.txt"
    path.write_text(content, encoding="utf-8")

    with pytest.raises(DataFileError, match=problem):
        BackupFile(path).load_prefix_of(wal, entries(1, 3))


def test_backup_prefix_partial_line_removed(tmp_path: Path) -> None:
    wal = WriteAheadLog(tmp_path / "store_1.wal")
    wal.load()
    wal.apply(0, entries(1, 3))
    path = tmp_path / "backup_1.txt"
    path.write_text(format_entry(entries(1, 1)[0]) + "2\t1", encoding="utf-8")

    assert BackupFile(path).load_prefix_of(wal, entries(1, 3)) == 1
    assert path.read_text(encoding="utf-8") == format_entry(entries(1, 1)[0])


def test_wal_truncate_far_back(tmp_path: Path) -> None:
    """A truncation finds its line across many read chunks from the end of the file."""
    path = tmp_path / "store_1.wal"
    first = WriteAheadLog(path)
    first.load()
    first.apply(0, [entry(seq, text="x" * 1000) for seq in range(1, 301)])
    second = WriteAheadLog(path)
    second.load()

    second.apply(7, entries(8, 9, term=2))

    assert len(second) == 9
    assert WriteAheadLog(path).load() == [*(entry(seq, text="x" * 1000) for seq in range(1, 8)), *entries(8, 9, term=2)]


@pytest.mark.parametrize("line", [
    "1\t1\t1\t1\t1\tplain\n",
    "1\t1\t1\t1\t1\tescaped \\t\\n\\\\ \\r\n",
    "1\t1\t1\t1\t1\tnon-ASCII \u00e9 \U0001f600\n",
    "0001\t1\t1\t1\t1\tleading zeros\n",
    "1\t1\t1\t1\t9223372036854775807\t19 digits\n",
])
def test_fast_read_matches_strict(tmp_path: Path, line: str) -> None:
    """The fast reader of a whole file returns what parse_entry returns for each line."""
    path = tmp_path / "output.txt"
    path.write_text(line * 3, encoding="utf-8")

    assert read_entries(path) == [parse_entry(line, path, 1)] * 3


@pytest.mark.parametrize("chunk_bytes", [1, 30, 64, 10_000])
def test_fast_read_across_chunks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, chunk_bytes: int) -> None:
    """Lines longer than a chunk and lines cut by a chunk boundary are read whole."""
    monkeypatch.setattr(files, "_PARSE_CHUNK_BYTES", chunk_bytes)
    written = [entry(seq, text="x" * (seq * 7 % 50)) for seq in range(1, 41)]
    path = tmp_path / "store_1.wal"
    path.write_text("".join(map(format_entry, written)), encoding="utf-8")

    assert WriteAheadLog(path).load() == written


def test_fast_read_decodes_bounded_chunks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The reader never decodes much more than one chunk at a time, so a long log costs little beside its entries."""
    monkeypatch.setattr(files, "_PARSE_CHUNK_BYTES", 100)
    sizes: list[int] = []
    parse_chunk = files._parse_chunk_fast

    def recording(chunk: bytes, parsed: list[Entry]) -> bool:
        sizes.append(len(chunk))
        return parse_chunk(chunk, parsed)

    monkeypatch.setattr(files, "_parse_chunk_fast", recording)
    path = tmp_path / "store_1.wal"
    path.write_text("".join(map(format_entry, entries(1, 50))), encoding="utf-8")

    assert WriteAheadLog(path).load() == entries(1, 50)
    assert len(sizes) > 1
    assert max(sizes) <= 100
    assert sum(sizes) == path.stat().st_size


def test_fast_read_error_in_later_chunk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(files, "_PARSE_CHUNK_BYTES", 64)
    path = tmp_path / "output.txt"
    path.write_text("".join(map(format_entry, entries(1, 20))) + "21\t1\t1\t1\tx\tbad\n", encoding="utf-8")

    with pytest.raises(DataFileError) as caught:
        read_entries(path)

    assert caught.value.line_number == 21
    assert "request_id must be a non-negative decimal integer" in caught.value.reason


@pytest.mark.parametrize("line", [
    "1\t1\t1\t1\t1\n",
    "1\t1\t1\t1\t1\ta\tb\n",
    "1\t1\t+1\t1\t1\ta\n",
    "1\t1\t1\t\u0661\t1\ta\n",
    "1\t1\t1\t1\t99999999999999999999\ta\n",
    "1\t1\t1\t1\t9223372036854775808\ta\n",
    "1\t1\t1\t1\t00000000000000000001\ta\n",
    "1\t1\t1\t1\t1\tbad \\x escape\n",
    "1\t1\t1\t1\t1\tcrlf\r\n",
    " 1\t1\t1\t1\t1\ta\n",
    "1_0\t1\t1\t1\t1\ta\n",
])
def test_fast_read_rejects_what_strict_rejects(tmp_path: Path, line: str) -> None:
    """A bad line after good ones raises the strict parser's error, with its line number."""
    path = tmp_path / "output.txt"
    path.write_text(format_entry(entry(1)) + line, encoding="utf-8")
    with pytest.raises(DataFileError) as expected:
        parse_entry(line, path, 2)

    with pytest.raises(DataFileError) as caught:
        read_entries(path)

    assert caught.value.line_number == 2
    assert caught.value.reason == expected.value.reason


def test_backup_gap_rejected(tmp_path: Path) -> None:
    backup = BackupFile(tmp_path / "backup_1.txt")
    backup.load()
    backup.append(entries(1, 2))

    with pytest.raises(ValueError, match="sequence number 4 cannot be line 3"):
        backup.append(entries(4, 4))


# --- StateFile and EventLog ---------------------------------------------------------------


def test_state_round_trip(tmp_path: Path) -> None:
    state = StateFile(tmp_path / "sync_1.state.json")

    state.save({"term": 4, "voted_for": 2, "config": {"epoch": 1}})

    assert state.load() == {"term": 4, "voted_for": 2, "config": {"epoch": 1}}


def test_state_missing(tmp_path: Path) -> None:
    assert StateFile(tmp_path / "sync_1.state.json").load() is None


def test_state_leaves_no_temp_file(tmp_path: Path) -> None:
    state = StateFile(tmp_path / "sync_1.state.json")

    state.save({"term": 1})
    state.save({"term": 2})

    assert sorted(path.name for path in tmp_path.iterdir()) == ["sync_1.state.json"]


def test_state_ignores_stale_temp_file(tmp_path: Path) -> None:
    """A crash before the rename leaves the old state in place."""
    state = StateFile(tmp_path / "sync_1.state.json")
    state.save({"term": 1})
    (tmp_path / "sync_1.state.json.tmp").write_text('{"term": 9')

    assert state.load() == {"term": 1}


@pytest.mark.parametrize(
    ("content", "reason"),
    [(b'{"term": 4', "invalid state file"), (b"[1, 2]", "expected a JSON object"),
     (b"\xff\xfe", "invalid state file"), (b"", "invalid state file")],
    ids=["truncated", "array", "not_utf8", "empty"],
)
def test_state_corrupt(tmp_path: Path, content: bytes, reason: str) -> None:
    path = tmp_path / "sync_1.state.json"
    path.write_bytes(content)

    with pytest.raises(DataFileError) as caught:
        StateFile(path).load()

    assert str(caught.value).startswith(f"{path}: {reason}")
    assert "delete this file" in str(caught.value)


def test_event_log_lines(tmp_path: Path) -> None:
    path = files.events_path(tmp_path, "sync", 2)
    log = EventLog(path, node=2, clock=lambda: 12.5)

    log.write("became_leader", {"term": 3})
    log.write("tick")
    log.flush()

    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert lines == [
        {"time": 12.5, "node": 2, "event": "became_leader", "term": 3},
        {"time": 12.5, "node": 2, "event": "tick"},
    ]
    log.close()


def test_event_log_cuts_partial_tail(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A log left with half a line by a killed node gets its next line on a line of its own."""
    path = files.events_path(tmp_path, "sync", 2)
    path.write_bytes(b'{"time": 1.0, "node": 2, "event": "started"}\n{"time": 2.0, "node": 2, "ev')

    with caplog.at_level(logging.WARNING), EventLog(path, node=2, clock=lambda: 3.0) as log:
        log.write("started")

    assert [json.loads(line)["time"] for line in path.read_text().splitlines()] == [1.0, 3.0]
    assert "removed a partial last line of 28 bytes" in caplog.text


def test_event_log_keeps_whole_lines(tmp_path: Path) -> None:
    path = files.events_path(tmp_path, "sync", 2)
    path.write_bytes(b'{"time": 1.0, "node": 2, "event": "started"}\n')

    with EventLog(path, node=2, clock=lambda: 3.0) as log:
        log.write("stopped")

    assert [json.loads(line)["event"] for line in path.read_text().splitlines()] == ["started", "stopped"]


class Color(enum.Enum):
    RED = "red"


class Level(enum.IntEnum):
    HIGH = 2


@dataclasses.dataclass
class Point:
    x: int
    color: Color


EVENT_FIELDS = [
    ("ints", {"request_id": 1, "seq": 2**70, "delta": -3}),
    ("text", {"text": 'tab\t "quoted" \\ \u2028 \x01 é 日本'}),
    ("floats", {"f": 1.5, "nan": math.nan, "inf": math.inf, "minus_inf": -math.inf, "whole": 3.0}),
    ("constants", {"yes": True, "no": False, "none": None}),
    ("containers", {"list": [1, (2, "b")], "dict": {"k": 1, 2: 3}, "set": {3, 1}, "empty": []}),
    ("enums", {"color": Color.RED, "level": Level.HIGH}),
    ("dataclass", {"point": Point(1, Color.RED)}),
    ("other", {"path": Path("/tmp/x")}),
    ("int_key", {1: "a", "b": 2}),
    ("no_fields", None),
    ("empty_fields", {}),
    ("name \"quoted\" é", {"clé": 1}),
]


@pytest.mark.parametrize(("event", "fields"), EVENT_FIELDS, ids=[case[0] for case in EVENT_FIELDS])
def test_event_log_matches_json_dumps(tmp_path: Path, event: str, fields: dict[Any, Any] | None) -> None:
    path = tmp_path / "events.jsonl"
    with EventLog(path, node=4, clock=lambda: 1712345678.123456) as log:
        log.write(event, fields)

    record: dict[Any, Any] = {"time": 1712345678.123456, "node": 4, "event": event, **(fields or {})}
    expected = json.dumps(record, ensure_ascii=False, default=files._json_default) + "\n"
    assert path.read_text(encoding="utf-8") == expected


def test_event_log_close_flushes(tmp_path: Path) -> None:
    path = files.events_path(tmp_path, "store", 1)
    with EventLog(path, node=1) as log:
        log.write("epoch", {"epoch": 2, "members": (1, 2)})

    assert json.loads(path.read_text())["members"] == [1, 2]


def test_event_log_reserved_field(tmp_path: Path) -> None:
    with EventLog(tmp_path / "events.jsonl", node=1) as log, pytest.raises(
        ValueError, match="reserved"
    ):
        log.write("vote", {"node": 3})


def test_read_events_skips_cut_lines(tmp_path: Path) -> None:
    path = tmp_path / "events_sync_1.jsonl"
    path.write_bytes(b'{"time": 1.0, "node": 1, "event": "started"}\n{"time": 2.0, "node": 1, "ev' + "é".encode()[:1])

    assert read_events(path) == [{"time": 1.0, "node": 1, "event": "started"}]
    assert read_events(tmp_path / "missing.jsonl") == []


@pytest.mark.skipif(not hasattr(os, "fdatasync"), reason="this platform has no fdatasync; appends use fsync there")
def test_appends_sync_data_with_fdatasync(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Appends to the log and to output.txt need only their data and size on disk, not a full fsync."""
    wal = WriteAheadLog(tmp_path / "store_1.wal")
    wal.load()
    wal.apply(0, entries(1, 1))
    output = OutputFile(tmp_path)
    output.raise_fence(1)
    output.append(1, entries(1, 1))
    calls: list[str] = []
    for name in ("fsync", "fdatasync"):
        real = getattr(os, name)

        def recorded(fd: int, name: str = name, real: Callable[[int], None] = real) -> None:
            calls.append(name)
            real(fd)

        monkeypatch.setattr(os, name, recorded)

    wal.apply(1, entries(2, 3))
    output.append(1, entries(2, 3))

    assert calls == ["fdatasync", "fdatasync"]
    assert WriteAheadLog(wal.path).load() == entries(1, 3)
    assert read_entries(output.path) == entries(1, 3)
