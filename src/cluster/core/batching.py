"""Split runs of entries into batches that fit one frame."""

from collections.abc import Sequence

from cluster.core.messages import Entry

MAX_BATCH_ENTRIES = 256
MAX_BATCH_TEXT_BYTES = 1024 * 1024


def split_batches(entries: Sequence[Entry]) -> list[tuple[Entry, ...]]:
    """Split `entries` in order into batches of bounded count and text size."""
    batches: list[tuple[Entry, ...]] = []
    current: list[Entry] = []
    size = 0
    for entry in entries:
        entry_size = len(entry.text) * 4  # an upper bound on UTF-8 bytes, cheap to compute
        if current and (len(current) >= MAX_BATCH_ENTRIES or size + entry_size > MAX_BATCH_TEXT_BYTES):
            batches.append(tuple(current))
            current = []
            size = 0
        current.append(entry)
        size += entry_size
    if current:
        batches.append(tuple(current))
    return batches
