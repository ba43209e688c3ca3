"""The files in a node's data directory, and the only code that reads or writes them.

- `output.txt`, `backup_<id>.txt` and the write-ahead logs `store_<id>.wal`
  hold one entry per line, in the tab-separated line format of
  docs/protocol.md. A crash can leave a partial last line, which readers
  ignore and writers cut off before they append.
- `output.txt` is shared by the sync nodes on one host. `OutputFile` takes an
  exclusive `flock` on `output.lock` for each operation and applies the fenced
  append rule of `cluster.core.output`, with the fence term in `output.fence`.
- `sync_<id>.state.json` and `store_<id>.state.json` hold a node's durable
  state and are replaced atomically.
- `events_<role>_<id>.jsonl` and `client_<id>.jsonl` are diagnostic logs that
  are never fsynced.

Every durable write is fsynced before its method returns; appends and
truncations use fdatasync (see `fsync_data`). The one write that may be
fsynced later is an append to `backup_<id>.txt`, because the write-ahead
log already contains its entries on disk. The methods block; a node process
calls them on its event loop, between the rounds of messages (see
`cluster.node.runtime`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import enum
import fcntl
import json
import logging
import math
import os
import re
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import IO, Any, TypeGuard

from cluster.core.bugs import Bug
from cluster.core.messages import Entry
from cluster.core.output import OutputDecision, OutputState, append_output, raise_fence
from cluster.error_text import describe_json_error, describe_unicode_error, json_value_text
from cluster.i18n import _, ngettext

logger = logging.getLogger(__name__)

StrPath = str | os.PathLike[str]

# The largest integer field, as in the wire codec: a signed 64-bit value.
MAX_FIELD_INT = 2**63 - 1

FIELD_COUNT = 6
_INT_FIELDS = ("seq", "term", "lamport", "client_id", "request_id")

# How many bytes to read per step when searching backwards for the last line.
_TAIL_CHUNK_BYTES = 64 * 1024


# --- File names ------------------------------------------------------------------


def output_path(data_dir: StrPath) -> Path:
    return Path(data_dir) / "output.txt"


def output_lock_path(data_dir: StrPath) -> Path:
    return Path(data_dir) / "output.lock"


def output_fence_path(data_dir: StrPath) -> Path:
    return Path(data_dir) / "output.fence"


def backup_path(data_dir: StrPath, node_id: int) -> Path:
    return Path(data_dir) / f"backup_{node_id}.txt"


def wal_path(data_dir: StrPath, node_id: int) -> Path:
    return Path(data_dir) / f"store_{node_id}.wal"


def sync_state_path(data_dir: StrPath, node_id: int) -> Path:
    return Path(data_dir) / f"sync_{node_id}.state.json"


def store_state_path(data_dir: StrPath, node_id: int) -> Path:
    return Path(data_dir) / f"store_{node_id}.state.json"


def events_path(data_dir: StrPath, role: str, node_id: int) -> Path:
    return Path(data_dir) / f"events_{role}_{node_id}.jsonl"


def client_log_path(data_dir: StrPath, client_id: int) -> Path:
    return Path(data_dir) / f"client_{client_id}.jsonl"


def layout_path(data_dir: StrPath) -> Path:
    """Return the path of `cluster.json`, the node addresses that `cluster run` writes before it starts a node."""
    return Path(data_dir) / "cluster.json"


# --- Errors ------------------------------------------------------------------------


class DataFileError(Exception):
    """A data file has content that no writer of this module produces."""

    def __init__(self, path: StrPath, reason: str, line_number: int | None = None) -> None:
        location = str(path) if line_number is None else f"{path}:{line_number}"
        super().__init__(f"{location}: {reason}")
        self.path = Path(path)
        self.line_number = line_number
        self.reason = reason


# --- Line format -------------------------------------------------------------------

_ESCAPES = {"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"}
_UNESCAPES = {"\\": "\\", "t": "\t", "n": "\n", "r": "\r"}


def escape_text(text: str) -> str:
    """Escape backslash, tab, newline and carriage return, so `text` fits in one field."""
    if "\\" in text:
        text = text.replace("\\", "\\\\")  # first, so the backslashes added below stay single
    for char in "\t\n\r":
        if char in text:
            text = text.replace(char, _ESCAPES[char])
    return text


def unescape_text(field: str) -> str:
    """Reverse `escape_text`, and raise ValueError on any other backslash sequence."""
    if "\\" not in field:
        return field
    parts = []
    start = 0
    while True:
        index = field.find("\\", start)
        if index < 0:
            parts.append(field[start:])
            return "".join(parts)
        parts.append(field[start:index])
        code = field[index + 1 : index + 2]
        if code not in _UNESCAPES:
            raise ValueError(
                _("invalid escape {sequence!r} at text column {column} (expected \\\\, \\t, \\n or \\r)").format(
                    sequence=field[index : index + 2], column=index + 1)
            )
        parts.append(_UNESCAPES[code])
        start = index + 2


def format_entry(entry: Entry) -> str:
    """Return the line for `entry`, trailing newline included."""
    return (
        f"{entry.seq}\t{entry.term}\t{entry.lamport}\t{entry.client_id}\t"
        f"{entry.request_id}\t{escape_text(entry.text)}\n"
    )


def parse_entry(line: str, path: StrPath, line_number: int) -> Entry:
    """Parse one line, with or without its newline, or raise DataFileError naming the line."""
    if line.endswith("\n"):
        line = line[:-1]
    fields = line.split("\t")
    if len(fields) != FIELD_COUNT:
        raise DataFileError(
            path,
            _("expected {count} tab-separated fields (seq, term, lamport, client_id, request_id, text), "
              "found {found}").format(count=FIELD_COUNT, found=len(fields)),
            line_number,
        )

    numbers = []
    for name, field in zip(_INT_FIELDS, fields[:5], strict=True):
        if not (field.isascii() and field.isdigit()) or len(field) > 19:
            raise DataFileError(
                path,
                _("{name} must be a non-negative decimal integer, found {value!r}").format(
                    name=name, value=field[:40]),
                line_number,
            )
        value = int(field)
        if value > MAX_FIELD_INT:
            raise DataFileError(
                path, _("{name} {value} exceeds {maximum}").format(name=name, value=value, maximum=MAX_FIELD_INT),
                line_number,
            )
        numbers.append(value)

    text_field = fields[5]
    if "\r" in text_field:
        raise DataFileError(
            path,
            _("text contains an unescaped carriage return (was the file saved with CRLF line endings?)"),
            line_number,
        )
    try:
        text = unescape_text(text_field)
    except ValueError as exc:
        raise DataFileError(path, str(exc), line_number) from None
    seq, term, lamport, client_id, request_id = numbers
    return Entry(seq, term, lamport, client_id, request_id, text)


# --- Reading entry files -----------------------------------------------------------


@dataclasses.dataclass(slots=True)
class _Scan:
    """An entry file read as a whole: its entries and the size of its complete lines."""

    entries: list[Entry]
    complete_size: int  # bytes up to and including the last newline
    partial_bytes: int  # bytes after the last newline (a crash mid-write)


def _scan(path: Path) -> _Scan:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return _Scan([], 0, 0)

    complete_size = data.rfind(b"\n") + 1
    entries = _parse_lines_fast(data, complete_size)
    if entries is None:
        entries = _parse_lines_strict(data, complete_size, path)
    return _Scan(entries, complete_size, len(data) - complete_size)


# The five number fields of a line as `_parse_lines_fast` accepts them: ASCII
# digits only, and at most 18 of them, so no value can exceed MAX_FIELD_INT.
_FAST_NUMBERS = re.compile(r"[0-9]{1,18}\t[0-9]{1,18}\t[0-9]{1,18}\t[0-9]{1,18}\t[0-9]{1,18}\t")
# Bytes decoded at a time by `_parse_lines_fast`, so the decoded text and
# its lines never take much more memory than this beside the entries.
_PARSE_CHUNK_BYTES = 4 * 1024 * 1024


def _parse_lines_fast(data: bytes, complete_size: int) -> list[Entry] | None:
    """Parse the complete lines of `data`, or return None when a line needs a closer look.

    A store node replays its whole write-ahead log at start, often millions
    of lines, so this path decodes the file in chunks of whole lines and
    checks each line with a few string operations. It accepts only lines
    that `parse_entry` accepts too, and returns None for any other, so that
    `_parse_lines_strict` raises the DataFileError that names the line.
    """
    entries: list[Entry] = []
    start = 0
    while start < complete_size:
        end = data.rfind(b"\n", start, min(start + _PARSE_CHUNK_BYTES, complete_size)) + 1
        if end <= start:  # a line longer than one chunk
            end = data.index(b"\n", start) + 1
        if not _parse_chunk_fast(data[start:end], entries):
            return None
        start = end
    return entries


def _parse_chunk_fast(chunk: bytes, entries: list[Entry]) -> bool:
    """Append the entries of `chunk`, which contains whole lines, and return False at the first line in doubt."""
    try:
        text = chunk.decode("utf-8")
    except UnicodeDecodeError:
        return False
    lines = text.split("\n")
    lines.pop()  # the empty string after the last newline
    append = entries.append
    numbers_match = _FAST_NUMBERS.match
    try:
        for line in lines:
            if numbers_match(line) is None:
                return False
            seq, term, lamport, client_id, request_id, text_field = line.split("\t")
            if "\r" in text_field:
                return False
            if "\\" in text_field:
                text_field = unescape_text(text_field)
            append(Entry(int(seq), int(term), int(lamport), int(client_id), int(request_id), text_field))
    except ValueError:  # more than six fields, or an invalid escape
        return False
    return True


def _parse_lines_strict(data: bytes, complete_size: int, path: Path) -> list[Entry]:
    """Parse the complete lines of `data` one at a time, and raise DataFileError naming the first bad line."""
    entries: list[Entry] = []
    start = 0
    line_number = 0
    while start < complete_size:
        end = data.index(b"\n", start)
        line_number += 1
        entries.append(_parse_line_bytes(data[start:end], path, line_number))
        start = end + 1
    return entries


def _parse_line_bytes(raw: bytes, path: StrPath, line_number: int) -> Entry:
    try:
        line = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        reason = _("line is not valid UTF-8: {error}").format(error=describe_unicode_error(exc))
        raise DataFileError(path, reason, line_number) from None
    return parse_entry(line, path, line_number)


def _warn_partial_line(path: Path, partial_bytes: int, action: str) -> None:
    if action == "removed":
        message = ngettext("{path}: removed a partial last line of {count} byte without a newline, left by a crash "
                           "during an earlier write",
                           "{path}: removed a partial last line of {count} bytes without a newline, left by a crash "
                           "during an earlier write", partial_bytes)
    else:
        message = ngettext("{path}: ignored a partial last line of {count} byte without a newline, left by a crash "
                           "during an earlier write",
                           "{path}: ignored a partial last line of {count} bytes without a newline, left by a crash "
                           "during an earlier write", partial_bytes)
    logger.warning("%s", message.format(path=path, count=partial_bytes))


def read_entries(path: StrPath) -> list[Entry]:
    """Read every complete line of an entry file; a missing file has no entries.

    A last line without a newline is the trace of a crash during a write, so
    it is ignored with a logged warning instead of raising.
    """
    path = Path(path)
    scan = _scan(path)
    if scan.partial_bytes:
        _warn_partial_line(path, scan.partial_bytes, "ignored")
    return scan.entries


def _check_sequence(path: Path, entries: Sequence[Entry]) -> None:
    """Raise DataFileError unless line i contains sequence number i, as in every log file."""
    for line_number, entry in enumerate(entries, start=1):
        if entry.seq != line_number:
            raise DataFileError(
                path,
                _("expected sequence number {expected}, found {found}").format(expected=line_number, found=entry.seq),
                line_number,
            )


# --- Durable writes ------------------------------------------------------------------


def fsync_data(fd: int) -> None:
    """Flush the data written to `fd`, and the file size, to disk.

    Appends and truncations need only these two, so fdatasync is enough,
    and it skips the timestamps that fsync also writes. Where Python has no
    os.fdatasync, as on macOS, this calls fsync.
    """
    if hasattr(os, "fdatasync"):
        os.fdatasync(fd)
    else:
        os.fsync(fd)


def fsync_directory(directory: StrPath) -> None:
    """Fsync a directory, so a file created or renamed in it survives a crash."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomically(path: StrPath, data: bytes) -> None:
    """Replace `path` with `data`: write a temporary file, fsync, rename, fsync the directory."""
    path = Path(path)
    temporary = path.with_name(path.name + ".tmp")
    with open(temporary, "wb") as file:
        file.write(data)
        file.flush()
        os.fsync(file.fileno())
    os.replace(temporary, path)
    fsync_directory(path.parent)


def _append_durably(path: Path, data: bytes) -> None:
    """Append `data` and fsync it, and fsync the directory too when the file is new."""
    fd, created = _open_for_append(path)
    try:
        _write_all(fd, data)
        fsync_data(fd)
    finally:
        os.close(fd)
    if created:
        fsync_directory(path.parent)


def _open_for_append(path: Path) -> tuple[int, bool]:
    """Open `path` for appending and return the descriptor and whether the file was created.

    The write paths use descriptors rather than file objects. A buffered file
    object costs several system calls to set up, and these writes lie on the
    path of every acknowledgement.
    """
    try:
        return os.open(path, os.O_WRONLY | os.O_APPEND), False
    except FileNotFoundError:
        return os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666), True


def _write_all(fd: int, data: bytes) -> None:
    """Write all of `data`, because os.write may write fewer bytes than requested, for example on a full disk."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _encode_lines(entries: Sequence[Entry]) -> bytes:
    return "".join(map(format_entry, entries)).encode("utf-8")


# --- output.txt ------------------------------------------------------------------------


class OutputFile:
    """`output.txt` with its lock and fence, shared by the sync nodes of one host.

    Each method takes the exclusive lock, reads the fence and the file's last
    sequence number, repairs a partial last line, decides with
    `cluster.core.output`, writes, fsyncs and releases the lock. The last
    sequence number is cached with the file's inode and size, so a normal
    append does not reread the file. When another process appended in the
    meantime, the size differs and only the tail is read again.
    """

    def __init__(self, data_dir: StrPath) -> None:
        self.path = output_path(data_dir)
        self.lock_path = output_lock_path(data_dir)
        self.fence_path = output_fence_path(data_dir)
        self._cached_file: tuple[int, int] | None = None  # (inode, size) the cache is valid for
        self._cached_last_seq = 0

    def raise_fence(self, term: int, wait: bool = True) -> OutputDecision:
        """Claim the file for the leader of `term`, unless a later term has claimed it.

        With `wait` False, raise BlockingIOError instead of waiting while
        another process holds the lock.
        """
        with self._locked(wait):
            state = self._read_state()
            decision = raise_fence(state, term)
            if decision.accepted and decision.fence_term > state.fence_term:
                self._write_fence(decision.fence_term)
        return decision

    def append(
        self, term: int, entries: Sequence[Entry], bugs: frozenset[Bug] = frozenset(), wait: bool = True
    ) -> OutputDecision:
        """Append the entries that directly follow the file's last line, unless fenced out.

        With `wait` False, raise BlockingIOError instead of waiting while
        another process holds the lock.
        """
        with self._locked(wait):
            state = self._read_state()
            decision = append_output(state, term, tuple(entries), bugs)
            if decision.accepted and decision.fence_term > state.fence_term:
                self._write_fence(decision.fence_term)
            if decision.entries:
                self._append_lines(decision.entries, decision.last_seq)
        return decision

    def read_state(self, wait: bool = True) -> OutputState:
        """Return the fence term and the last sequence number, read under the lock.

        With `wait` False, raise BlockingIOError instead of waiting while
        another process holds the lock.
        """
        with self._locked(wait):
            return self._read_state()

    @contextlib.contextmanager
    def _locked(self, wait: bool = True) -> Iterator[None]:
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
            yield
        finally:
            os.close(fd)  # closing the last descriptor releases the flock

    def _read_state(self) -> OutputState:
        return OutputState(fence_term=self.read_fence(), last_seq=self._read_last_seq())

    def read_fence(self) -> int:
        """Return the fence term of `output.fence`, 0 when the file is missing, or raise DataFileError.

        Reading needs no lock, because `_write_fence` replaces the file atomically.
        """
        try:
            fd = os.open(self.fence_path, os.O_RDONLY)
        except FileNotFoundError:
            return 0
        try:
            raw = b"".join(iter(lambda: os.read(fd, 4096), b""))
        finally:
            os.close(fd)
        text = raw.strip()
        if not (text.isdigit() and len(text) <= 19):
            raise DataFileError(
                self.fence_path,
                _("expected a decimal term, found {value!r}; restore it from the highest leader term in the "
                  "event logs").format(value=raw[:40]),
            )
        return int(text)

    def _write_fence(self, term: int) -> None:
        write_atomically(self.fence_path, f"{term}\n".encode("ascii"))

    def _read_last_seq(self) -> int:
        try:
            stat = os.stat(self.path)
            if (stat.st_ino, stat.st_size) == self._cached_file:
                return self._cached_last_seq
            file = open(self.path, "r+b")  # noqa: SIM115 (closed by the with statement below)
        except FileNotFoundError:
            self._cached_file = None
            self._cached_last_seq = 0
            return 0
        with file:
            stat = os.fstat(file.fileno())
            last_seq, size = self._read_tail(file, stat.st_size)
        self._cached_file = (stat.st_ino, size)
        self._cached_last_seq = last_seq
        return last_seq

    def _read_tail(self, file: IO[bytes], size: int) -> tuple[int, int]:
        """Return the last sequence number and the file size after a partial line is cut off."""
        complete_size, last_line, line_start = _find_last_line(file, size)
        if complete_size < size:
            _warn_partial_line(self.path, size - complete_size, "removed")
            file.truncate(complete_size)
            file.flush()
            os.fsync(file.fileno())
        if last_line is None:
            return 0, complete_size
        try:
            entry = _parse_line_bytes(last_line, self.path, 0)
        except DataFileError as exc:
            file.seek(0)
            line_number = file.read(line_start).count(b"\n") + 1
            raise DataFileError(self.path, f"{exc.reason}; {_output_repair_hint()}", line_number) from None
        return entry.seq, complete_size

    def _append_lines(self, entries: Sequence[Entry], last_seq: int) -> None:
        data = _encode_lines(entries)
        _append_durably(self.path, data)
        if self._cached_file is not None:
            inode, size = self._cached_file
            self._cached_file = (inode, size + len(data))
        else:
            stat = os.stat(self.path)
            self._cached_file = (stat.st_ino, stat.st_size)
        self._cached_last_seq = last_seq


def _find_last_line(file: IO[bytes], size: int) -> tuple[int, bytes | None, int]:
    """Search backwards from `size` for the last complete line.

    Returns the size up to and including the last newline, the bytes of the
    last complete line without its newline (None when there is none) and the
    offset where that line starts.
    """
    tail = b""  # the bytes from `start` to `size`
    start = size
    while True:
        end = start
        start = max(0, end - _TAIL_CHUNK_BYTES)
        file.seek(start)
        tail = file.read(end - start) + tail
        last_newline = tail.rfind(b"\n")
        if last_newline < 0:
            if start == 0:
                return 0, None, 0
            continue
        previous_newline = tail.rfind(b"\n", 0, last_newline)
        if previous_newline >= 0 or start == 0:
            line_start = previous_newline + 1
            return start + last_newline + 1, tail[line_start:last_newline], start + line_start


# --- Store node files ---------------------------------------------------------------------


class _EntryLog:
    """An append-only entry file whose line i contains sequence number i.

    Only the line count and the byte size stay in memory. A truncation finds
    the byte offset of its line by reading back from the end, which is short
    because the protocol drops only uncommitted tails.
    """

    def __init__(self, path: StrPath) -> None:
        self.path = Path(path)
        self._count: int | None = None  # None until load()
        self._size = 0
        self._unsynced = False

    def __len__(self) -> int:
        return self._loaded_count()

    def load(self, repair: bool = True) -> list[Entry]:
        """Read the file, cut off a partial last line when `repair` is set, and return its entries.

        Raises DataFileError when a line is invalid or sequence numbers do not
        run 1, 2, 3, ... from the first line. With `repair` off the file is
        only read, so the object must not be used to write.
        """
        scan = self._scan_checked()
        if repair:
            self._cut_partial_line(scan.complete_size, scan.partial_bytes)
        self._count = len(scan.entries)
        self._size = scan.complete_size
        return scan.entries

    def _scan_checked(self) -> _Scan:
        """Parse the file and check its sequence numbers, adding the store node's repair to any DataFileError."""
        try:
            scan = _scan(self.path)
            _check_sequence(self.path, scan.entries)
        except DataFileError as exc:
            raise DataFileError(exc.path, f"{exc.reason}. {store_restore_hint()}", exc.line_number) from None
        return scan

    def _cut_partial_line(self, complete_size: int, partial_bytes: int) -> None:
        if partial_bytes:
            _warn_partial_line(self.path, partial_bytes, "removed")
            with open(self.path, "r+b") as file:
                file.truncate(complete_size)
                file.flush()
                os.fsync(file.fileno())

    def _loaded_count(self) -> int:
        if self._count is None:
            raise RuntimeError(f"{self.path}: call load() before writing")
        return self._count

    def _encode_from(self, position: int, entries: Sequence[Entry]) -> list[bytes]:
        """Encode `entries` as lines that must hold positions `position + 1`, ..."""
        lines = []
        for offset, entry in enumerate(entries, start=1):
            if entry.seq != position + offset:
                raise ValueError(
                    f"{self.path}: entry with sequence number {entry.seq}"
                    f" cannot be line {position + offset}"
                )
            lines.append(format_entry(entry).encode("utf-8"))
        return lines

    def _write_lines(self, keep: int, lines: Sequence[bytes], durable: bool = True) -> None:
        """Truncate to the first `keep` lines, append `lines`, and fsync once when `durable` is set."""
        count = self._loaded_count()
        if keep < count:
            self._size = self._line_offset(keep)
        data = b"".join(lines)
        fd, created = _open_for_append(self.path)
        try:
            if keep < count:
                os.ftruncate(fd, self._size)
                count = keep
            _write_all(fd, data)
            if durable:
                fsync_data(fd)
        finally:
            os.close(fd)
        self._count = count + len(lines)
        self._size += len(data)
        self._unsynced = not durable
        if created:
            fsync_directory(self.path.parent)

    @property
    def unsynced(self) -> bool:
        """Whether a write since the last fsync may not be on disk yet."""
        return self._unsynced

    def sync(self) -> None:
        """Fsync the writes made with `durable` off, if there are any."""
        if not self._unsynced:
            return
        fd = os.open(self.path, os.O_RDONLY)
        try:
            fsync_data(fd)
        finally:
            os.close(fd)
        self._unsynced = False

    def _line_offset(self, line: int) -> int:
        """Return the byte offset at which line `line + 1` starts, reading back from the end."""
        if line == 0:
            return 0
        # The newline that ends line `line` is this many newlines from the end.
        remaining = self._loaded_count() - line + 1
        end = self._size
        with open(self.path, "rb") as file:
            while end > 0:
                start = max(0, end - _TAIL_CHUNK_BYTES)
                file.seek(start)
                chunk = file.read(end - start)
                found = chunk.count(b"\n")
                if found >= remaining:
                    index = len(chunk)
                    for _ in range(remaining):
                        index = chunk.rindex(b"\n", 0, index)
                    return start + index + 1
                remaining -= found
                end = start
        raise DataFileError(
            self.path, f"has fewer lines than the {self._count} loaded, so another process changed it; restart the node"
        )


class WriteAheadLog(_EntryLog):
    """A store node's write-ahead log `store_<id>.wal` of the entries it accepted."""

    def apply(self, keep: int, entries: Sequence[Entry]) -> None:
        """Keep the first `keep` entries, append `entries` after them and fsync."""
        self.apply_many([(keep, entries)])

    def apply_many(self, batches: Sequence[tuple[int, Sequence[Entry]]]) -> None:
        """Apply several `(keep, entries)` batches in order with one truncate, write and fsync.

        This is group commit: the caller merges the batches that arrived while
        the previous fsync ran. Raises ValueError when a `keep` exceeds the log
        length at that point or an entry's sequence number is not its position.
        """
        base = self._loaded_count()  # lines of the file that stay
        pending: list[bytes] = []  # new lines after them
        for keep, entries in batches:
            if keep > base + len(pending):
                raise ValueError(
                    f"{self.path}: cannot keep {keep} entries of a log of {base + len(pending)}"
                )
            if keep <= base:
                base = keep
                pending = []
            else:
                del pending[keep - base :]
            pending.extend(self._encode_from(keep, entries))
        self._write_lines(base, pending)


class BackupFile(_EntryLog):
    """A store node's committed prefix of its log, `backup_<id>.txt`."""

    def append(self, entries: Sequence[Entry], durable: bool = True) -> None:
        """Append newly committed `entries`, which must follow the last line, and fsync when `durable` is set.

        A store node appends with `durable` off and calls `sync` up to
        100 ms later (see `cluster.node.store_process`). Every entry of this
        file is already fsynced in the write-ahead log, so a crash that loses
        the last lines loses no data, and the node learns the commit index again.
        """
        count = self._loaded_count()
        self._write_lines(count, self._encode_from(count, entries), durable)

    def load_prefix_of(self, wal: WriteAheadLog, log: Sequence[Entry], repair: bool = True) -> int:
        """Cut off a partial last line when `repair` is set, and return the number of committed entries.

        `log` is what `wal.load()` returned. Both files contain the lines that
        `format_entry` wrote, so the usual check compares bytes and parses
        nothing. Only when the bytes differ are the lines parsed and compared
        as entries. Raises DataFileError when the file is not a prefix of the
        write-ahead log. With `repair` off the file is only read.
        """
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            data = b""
        complete_size = data.rfind(b"\n") + 1
        try:
            with open(wal.path, "rb") as wal_file:
                wal_prefix = wal_file.read(complete_size)
        except FileNotFoundError:
            wal_prefix = b""
        if data[:complete_size] == wal_prefix:
            count = data.count(b"\n", 0, complete_size)
        else:
            committed = self._scan_checked().entries
            if len(committed) > len(log) or list(log[: len(committed)]) != committed:
                if len(committed) > len(log):
                    problem = ngettext("holds {count} committed entry, but {wal} holds only {wal_count}",
                                       "holds {count} committed entries, but {wal} holds only {wal_count}",
                                       len(committed)).format(count=len(committed), wal=wal.path, wal_count=len(log))
                else:
                    first = next(seq for seq, entry in enumerate(committed, start=1) if log[seq - 1] != entry)
                    problem = _("differs from {wal} at sequence number {seq}").format(wal=wal.path, seq=first)
                raise DataFileError(self.path, f"{problem}. {store_restore_hint()}")
            count = len(committed)
        if repair:
            self._cut_partial_line(complete_size, len(data) - complete_size)
        self._count = count
        self._size = complete_size
        return count


def store_restore_hint() -> str:
    """Return the fix for a store node's write-ahead log or backup file that the node rejects."""
    return _("Restore this node's data files from a copy. Removing them instead is safe only while "
             "other store members hold every committed entry: the node then rejoins and catches up, "
             "and the leader accepts no write while the primary lacks entries that output.txt holds")


# --- Node state ----------------------------------------------------------------------------


class StateFile:
    """A node's small durable state as one JSON object, replaced atomically on each save."""

    def __init__(self, path: StrPath) -> None:
        self.path = Path(path)

    def save(self, state: dict[str, Any]) -> None:
        """Write `state` to a temporary file, fsync it and rename it over the old state."""
        data = json.dumps(state, sort_keys=True, indent=2, default=_json_default) + "\n"
        write_atomically(self.path, data.encode("utf-8"))

    def load(self) -> dict[str, Any] | None:
        """Return the saved state, or None when the node has never saved one."""
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return None
        try:
            state = json.loads(raw.decode("utf-8"))
        except UnicodeDecodeError as exc:
            reason = _("invalid state file ({error})").format(error=describe_unicode_error(exc))
            raise DataFileError(self.path, _with_reset_hint(reason, self.path)) from None
        except json.JSONDecodeError as exc:
            reason = _("invalid state file ({error})").format(error=describe_json_error(exc))
            raise DataFileError(self.path, _with_reset_hint(reason, self.path)) from None
        except (RecursionError, ValueError):
            # Python's json module gives up on nesting deeper than the interpreter's recursion
            # limit and on integers longer than its digit limit. No node writes either.
            reason = _("invalid state file (nested too deeply, or a number too long)")
            raise DataFileError(self.path, _with_reset_hint(reason, self.path)) from None
        if not isinstance(state, dict):
            reason = _("expected a JSON object, found {value}").format(value=json_value_text(state))
            raise DataFileError(self.path, _with_reset_hint(reason, self.path))
        return state

    def invalid(self, error: Exception, role: str) -> DataFileError:
        """Return the error for a state whose fields the node of `role` could not read."""
        if isinstance(error, KeyError):
            reason = _("the field {name} is missing").format(name=error.args[0] if error.args else "?")
        else:
            reason = _("a field has an invalid value ({error})").format(error=error)
        return DataFileError(self.path, _with_reset_hint(reason, self.path, role))


# The fields a node reads from its state file. Only the ones marked optional may be missing.
_STATE_INT_FIELDS = {"sync": (("term", False),), "store": (("leader_term", False), ("synced_epoch", True))}
# The integer fields of the "config" object and its lists of node ids. Only "joining" may be missing.
_CONFIG_INT_FIELDS = ("epoch", "term", "primary")
_CONFIG_LIST_FIELDS = ("backups", "joining")


def check_state(path: Path, state: dict[str, Any], role: str, sync_count: int | None = None,
                store_count: int | None = None) -> dict[str, Any]:
    """Return `state` read from the state file of a `role` node, or raise DataFileError naming the wrong field.

    With the cluster's `sync_count` and `store_count`, node ids must also
    name nodes of the cluster.
    """
    shape = _state_shape(role)

    def wrong(reason: str) -> DataFileError:
        return DataFileError(path, _with_reset_hint(f"{reason}; {shape}", path, role))

    for name, optional in _STATE_INT_FIELDS[role]:
        if name not in state:
            if optional:
                continue
            raise wrong(_("the field \"{name}\" is missing").format(name=name))
        if not _is_json_int(state[name]) or not 0 <= state[name] <= MAX_FIELD_INT:
            raise wrong(_("\"{name}\" must be an integer from 0 to {high}, found {value}").format(
                name=name, high=MAX_FIELD_INT, value=json_value_text(state[name])))
    voted_for = state.get("voted_for")
    if role == "sync" and voted_for is not None and not _is_node_id(voted_for, sync_count):
        raise wrong(_("\"voted_for\" must be null or the id of a sync node, from 1 to {high}, found {value}").format(
            high=sync_count or MAX_FIELD_INT, value=json_value_text(voted_for)))

    if "config" not in state:
        raise wrong(_("the field \"config\" is missing"))
    config = state["config"]
    if not isinstance(config, dict):
        raise wrong(_("\"config\" must be a JSON object, found {value}").format(value=json_value_text(config)))
    for name in _CONFIG_INT_FIELDS:
        if name not in config:
            raise wrong(_("the field \"config.{name}\" is missing").format(name=name))
        if name == "primary":
            continue  # a node id, checked below
        if not _is_json_int(config[name]) or not 0 <= config[name] <= MAX_FIELD_INT:
            raise wrong(_("\"config.{name}\" must be an integer from 0 to {high}, found {value}").format(
                name=name, high=MAX_FIELD_INT, value=json_value_text(config[name])))
    if not _is_node_id(config["primary"], store_count):
        raise wrong(_("\"config.primary\" must be the id of a store node, from 1 to {high}, found {value}").format(
            high=store_count or MAX_FIELD_INT, value=json_value_text(config["primary"])))
    for name in _CONFIG_LIST_FIELDS:
        if name not in config:
            if name == "joining":
                continue
            raise wrong(_("the field \"config.{name}\" is missing").format(name=name))
        value = config[name]
        if not isinstance(value, list) or not all(_is_node_id(node, store_count) for node in value) \
                or len(set(value)) != len(value) or config["primary"] in value:
            raise wrong(_("\"config.{name}\" must be a list of distinct store node ids, from 1 to {high}, without "
                          "the primary, found {value}").format(name=name, high=store_count or MAX_FIELD_INT,
                                                               value=json_value_text(value)))
    if not set(config.get("joining", [])) <= set(config["backups"]):
        raise wrong(_("\"config.joining\" may list only nodes of \"config.backups\", found {value}").format(
            value=json_value_text(config["joining"])))
    return state


def _is_node_id(value: object, count: int | None) -> bool:
    """Return True when `value` is a node id from 1 to `count` (to MAX_FIELD_INT when `count` is None)."""
    return _is_json_int(value) and 1 <= value <= (count if count is not None else MAX_FIELD_INT)


def _state_shape(role: str) -> str:
    """Return what the state file of a `role` node contains, as the node writes it."""
    config = '"config": {"epoch": N, "term": N, "primary": ID, "backups": [ID, ...], "joining": [ID, ...]}'
    if role == "sync":
        return _("a sync state file holds {{\"term\": N, \"voted_for\": ID or null, {config}}}, as a sync node "
                 "writes it").format(config=config)
    return _("a store state file holds {{\"leader_term\": N, \"synced_epoch\": N, {config}}}, as a store node "
             "writes it").format(config=config)


def _is_json_int(value: object) -> TypeGuard[int]:
    # json.loads reads true and false as bool, which is a subclass of int.
    return isinstance(value, int) and not isinstance(value, bool)


def _output_repair_hint() -> str:
    """Return how to recover from a damaged line of output.txt."""
    return _("output.txt must hold the committed log, so copy the damaged line from the same line of a store "
             "node's backup file, or restore output.txt from a copy")


def _with_reset_hint(reason: str, path: Path, role: str | None = None) -> str:
    """Return `reason` followed by how to recover from a damaged state file of a sync or a store node."""
    if role is None:
        role = "store" if path.name.startswith("store_") else "sync"
    if role == "store":
        return f"{reason}. {store_restore_hint()}"
    hint = _("to reset the node, stop it and delete this file, which makes it forget its term, vote and "
             "configuration (a sync node may then vote twice in one term)")
    return f"{reason}; {hint}"


def _json_default(value: object) -> object:
    """Convert enums, dataclasses and sets for json.dumps; anything else becomes its str()."""
    if isinstance(value, enum.Enum):
        return value.value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if isinstance(value, (set, frozenset)):
        return sorted(value, key=repr)
    return str(value)


# --- Diagnostic logs -------------------------------------------------------------------------

_EVENT_KEYS = frozenset({"time", "node", "event"})

# Writes a field value as json.dumps(value, ensure_ascii=False, default=_json_default) does.
_VALUE_ENCODER = json.JSONEncoder(ensure_ascii=False, default=_json_default)
_encode_string: Callable[[str], str] = json.encoder.encode_basestring


def _format_float(value: float) -> str:
    """Write `value` as json.dumps does: the shortest repr, or NaN, Infinity and -Infinity."""
    if math.isfinite(value):
        return float.__repr__(value)
    if value != value:
        return "NaN"
    return "Infinity" if value > 0 else "-Infinity"


# The json.dumps text of a value, for each of these exact types. Subclasses
# such as enums, and every other type, go through `_VALUE_ENCODER`.
_FORMATTERS: dict[type, Callable[[Any], str]] = {
    int: int.__repr__,
    str: _encode_string,
    float: _format_float,
    bool: lambda value: "true" if value else "false",
    type(None): lambda _value: "null",
}


class EventLog:
    """An append-only JSON lines log of protocol events, for diagnostics.

    Each line is `{"time": <unix seconds>, "node": <id>, "event": <name>, ...fields}`,
    byte for byte as `json.dumps(record, ensure_ascii=False)` writes it, so
    readers may also search the text for `"event": "<name>"`. Lines are
    buffered and written on `flush()` and `close()`, or when the buffer of the
    file fills. They are never fsynced, so a crash can lose the last ones.
    """

    def __init__(
        self, path: StrPath, node: int, clock: Callable[[], float] = time.time
    ) -> None:
        self.path = Path(path)
        self.node = node
        self._clock = clock
        _cut_partial_tail(self.path)
        self._file = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 (closed in close())
        self._node_part = f', "node": {_VALUE_ENCODER.encode(node)}, "event": '
        self._key_parts: dict[str, str] = {}  # field name -> its text with the separators before and after

    def write(self, event: str, fields: dict[str, Any] | None = None) -> None:
        """Buffer one event line. Raise ValueError when a field is named time, node or event."""
        now = self._clock()
        parts = ['{"time": ', _format_float(now), self._node_part, _encode_string(event)]
        if fields:
            if not _EVENT_KEYS.isdisjoint(fields):
                clashes = _EVENT_KEYS.intersection(fields)
                raise ValueError(f"event field names {sorted(clashes)} are reserved")
            formatters = _FORMATTERS
            key_parts = self._key_parts
            for key, value in fields.items():
                key_part = key_parts.get(key)
                if key_part is None:
                    if type(key) is not str:
                        self._write_record(now, event, fields)
                        return
                    key_part = key_parts[key] = f", {_encode_string(key)}: "
                format_value = formatters.get(type(value))
                parts.append(key_part)
                parts.append(_VALUE_ENCODER.encode(value) if format_value is None else format_value(value))
        parts.append("}\n")
        self._file.write("".join(parts))

    def _write_record(self, now: float, event: str, fields: dict[Any, Any]) -> None:
        """Write a line whose field names are not all strings, which json.dumps converts or rejects."""
        record: dict[Any, Any] = {"time": now, "node": self.node, "event": event}
        record.update(fields)
        self._file.write(json.dumps(record, ensure_ascii=False, default=_json_default) + "\n")

    def flush(self) -> None:
        self._file.flush()

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> EventLog:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _cut_partial_tail(path: Path) -> None:
    """Remove a last line without a newline from `path`, so that the next appended line starts on its own.

    A log's buffer can reach the file when it fills, in the middle of a line.
    If the node is killed before its next flush, the first line it writes
    after a restart would otherwise be glued to that part.
    """
    try:
        file = open(path, "rb+")  # noqa: SIM115 (closed below)
    except FileNotFoundError:
        return
    with file:
        size = file.seek(0, os.SEEK_END)
        complete, _line, _start = _find_last_line(file, size)
        if complete < size:
            _warn_partial_line(path, size - complete, "removed")
            file.truncate(complete)


def read_events(path: StrPath) -> list[dict[str, Any]]:
    """Return the records of an event log or client log in file order, or none when the file does not exist.

    A line that is not valid JSON is skipped, because a process killed or
    still writing leaves its last line cut, even inside a UTF-8 character.
    """
    try:
        text = Path(path).read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return []
    records = []
    for line in text.splitlines():
        try:
            records.append(json.loads(line))
        except (RecursionError, ValueError):
            continue
    return records
