"""Unit tests of split_batches (core/batching.py): order and the frame limits."""

from __future__ import annotations

from unittest import mock

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cluster.core import batching
from cluster.core.batching import MAX_BATCH_ENTRIES, MAX_BATCH_TEXT_BYTES, split_batches
from cluster.core.messages import Entry


def entries_with(texts: list[str]) -> list[Entry]:
    return [Entry(seq, 1, seq, 1, seq, text) for seq, text in enumerate(texts, start=1)]


def test_empty_input() -> None:
    """No entries make no batches."""
    assert split_batches([]) == []


def test_count_limit() -> None:
    """A run one longer than MAX_BATCH_ENTRIES is split into a full batch and one entry."""
    entries = entries_with(["x"] * (MAX_BATCH_ENTRIES + 1))

    batches = split_batches(entries)

    assert [len(batch) for batch in batches] == [MAX_BATCH_ENTRIES, 1]


def test_size_limit() -> None:
    """Texts whose UTF-8 bound exceeds MAX_BATCH_TEXT_BYTES together go into separate batches."""
    half = MAX_BATCH_TEXT_BYTES // 8  # 4 bytes per character bound: each text fills half a batch
    entries = entries_with(["a" * half, "b" * half, "c"])

    batches = split_batches(entries)

    assert [len(batch) for batch in batches] == [2, 1]


def test_oversized_entry_alone() -> None:
    """An entry larger than the size limit still travels, alone in its batch."""
    entries = entries_with(["s", "x" * MAX_BATCH_TEXT_BYTES, "t"])

    batches = split_batches(entries)

    assert [len(batch) for batch in batches] == [1, 1, 1]


@settings(max_examples=200, deadline=None)
@given(
    texts=st.lists(st.text(max_size=12), max_size=40),
    max_entries=st.integers(1, 6),
    max_bytes=st.integers(1, 64),
)
def test_split_properties(texts: list[str], max_entries: int, max_bytes: int) -> None:
    """Batches keep the input order, are never empty, and respect both limits unless one entry alone exceeds them."""
    entries = entries_with(texts)

    with (
        mock.patch.object(batching, "MAX_BATCH_ENTRIES", max_entries),
        mock.patch.object(batching, "MAX_BATCH_TEXT_BYTES", max_bytes),
    ):
        batches = split_batches(entries)

    assert [entry for batch in batches for entry in batch] == entries
    assert all(batch for batch in batches)
    assert all(len(batch) <= max_entries for batch in batches)
    for batch in batches:
        if len(batch) > 1:
            assert sum(len(entry.text.encode()) for entry in batch) <= max_bytes


@pytest.mark.parametrize("count", [1, 255, 256, 257, 513])
def test_batch_count(count: int) -> None:
    """A run of small entries needs ceil(count / MAX_BATCH_ENTRIES) batches."""
    batches = split_batches(entries_with(["x"] * count))

    assert len(batches) == -(-count // MAX_BATCH_ENTRIES)
