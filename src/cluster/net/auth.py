"""Authenticated peer connections: the cluster key ring, the handshake and per-frame tags.

Every connection between nodes (a node's outbound `PeerLink` to a peer's
cluster port) runs this handshake, where C is the connecting node and A the
accepting one:

1. C sends OPEN with a random 16-byte nonce.
2. A sends CHALLENGE: a random 16-byte challenge, tagged with
   HMAC(key, "challenge" || nonce || challenge), which proves to C that A
   holds a cluster key.
3. C sends HELLO: its role and node id and the role and id of the node it
   meant to reach, tagged with HMAC(key, "hello" || challenge || nonce || hello).
4. C then sends DATA frames, each one message frame of `cluster.wire` with a
   sequence number 1, 2, 3, ... and the tag
   HMAC(key, "data" || challenge || sequence || payload).

A binds every tag to its own fresh challenge, so a frame captured on one
connection fails on any other, and it accepts only the next sequence number,
so a frame replayed, dropped or reordered within a connection is rejected as
well. The labels keep a tag of one kind from passing as a tag of another.

Each frame on the cluster port is a 4-byte big-endian length N, then N bytes:
one byte `PEER_WIRE_VERSION`, one byte of frame kind, then the fields below.
A frame whose first byte is `cluster.wire.WIRE_VERSION` is a plain message
frame, which the cluster port rejects as untagged. Client ports keep the
plain format, because clients hold no key.

    OPEN       nonce[16]
    CHALLENGE  key_id[4] challenge[16] tag[32]
    HELLO      key_id[4] tag[32] hello (UTF-8 JSON: role, node, to_role, to_node)
    DATA       sequence[8, big-endian] tag[32] payload (version byte + message JSON)

A key ring holds the keys a node accepts, and its first key is the one the
node tags with. The key id in CHALLENGE and HELLO names the key of the ring
that made the tag, so the receiver checks one HMAC and can say in its log
which key was missing. A key id is the first 4 bytes of SHA-256 of a label and
the key: it names a key without revealing it.

This module touches no socket and no clock. The caller passes the nonces in,
reads the frames and closes the connection when a method raises `AuthError`.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import json
import os
import re
import secrets
import struct
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

from cluster.error_text import describe_os_error
from cluster.i18n import _
from cluster.wire import MAX_FRAME_BYTES, WIRE_VERSION, ProtocolError

_openssl_hmac_new: Callable[..., Any] | None
try:
    from _hashlib import hmac_new as _openssl_hmac_new
except ImportError:  # a Python built without OpenSSL
    _openssl_hmac_new = None

PEER_WIRE_VERSION = 2
NONCE_BYTES = 16
TAG_BYTES = 32
KEY_ID_BYTES = 4
SEQUENCE_BYTES = 8
MIN_KEY_BYTES = 32

# Frames before the HELLO is verified are small, so a reader limits them to
# this many bytes and never buffers megabytes for a peer it has not verified.
MAX_HANDSHAKE_FRAME_BYTES = 1024
# The largest DATA frame: the largest message frame of `cluster.wire` plus the
# envelope (version, kind, sequence number and tag).
DATA_OVERHEAD_BYTES = 2 + SEQUENCE_BYTES + TAG_BYTES
MAX_PEER_FRAME_BYTES = MAX_FRAME_BYTES + DATA_OVERHEAD_BYTES

_LENGTH = struct.Struct(">I")
_SEQUENCE = struct.Struct(">Q")
_MAX_SEQUENCE = 2**64 - 1

_CHALLENGE_LABEL = b"cluster-sync challenge\x00"
_HELLO_LABEL = b"cluster-sync hello\x00"
_DATA_LABEL = b"cluster-sync data\x00"
_KEY_ID_LABEL = b"cluster-sync key id\x00"

KEY_GENERATE_HINT = "python3 -c 'import secrets; print(secrets.token_hex(32))'"


class FrameKind(enum.IntEnum):
    OPEN = 1
    CHALLENGE = 2
    HELLO = 3
    DATA = 4


# The version and kind bytes that start every DATA frame.
_DATA_HEADER = bytes((PEER_WIRE_VERSION, FrameKind.DATA))

class RejectReason(enum.Enum):
    """The reason a peer connection failed authentication; the values name the counters."""

    MISSING_TAG = "missing_tag"  # a plain, untagged message frame on the cluster port
    WRONG_TAG = "wrong_tag"  # the tag does not match the frame
    REPLAYED_FRAME = "replayed_frame"  # a sequence number at or below one already accepted
    WRONG_SEQUENCE = "wrong_sequence"  # a sequence number that skips ahead
    BAD_HELLO = "bad_hello"  # a missing, repeated or invalid HELLO, or one meant for another node
    UNKNOWN_NODE = "unknown_node"  # the HELLO names a role and id outside the cluster
    UNKNOWN_KEY = "unknown_key"  # the key id names no key of this node's ring
    MALFORMED = "malformed"  # an envelope that is too short or has an unknown version or kind
    HANDSHAKE_TIMEOUT = "handshake_timeout"  # the handshake did not finish in time


class AuthError(ProtocolError):
    """A peer frame failed authentication; the caller counts `reason` and closes the connection."""

    def __init__(self, reason: RejectReason, detail: str) -> None:
        super().__init__(f"{reason.value}: {detail}")
        self.reason = reason
        self.detail = detail


class KeyConfigError(ValueError):
    """The cluster key setting is missing or invalid; the message names the setting and the fix."""


# --- Keys ------------------------------------------------------------------------------


def key_id(key: bytes) -> bytes:
    """Return the 4-byte id that names `key` in frames and logs."""
    return hashlib.sha256(_KEY_ID_LABEL + key).digest()[:KEY_ID_BYTES]


@dataclass(frozen=True, slots=True)
class KeyRing:
    """The cluster keys a node accepts; the first one tags what the node sends.

    The repr names the source and the key ids only, so logging a settings
    object never prints a key.
    """

    keys: tuple[bytes, ...] = field(repr=False)
    source: str = ""
    _by_id: dict[bytes, bytes] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.keys:
            raise KeyConfigError(f"{self.source or 'the key ring'} holds no key")
        for key in self.keys:
            if len(key) < MIN_KEY_BYTES:
                raise KeyConfigError(
                    f"a key of {self.source or 'the key ring'} has {len(key)} bytes;"
                    f" at least {MIN_KEY_BYTES} are required"
                )
        object.__setattr__(self, "_by_id", {key_id(key): key for key in reversed(self.keys)})

    @property
    def send_key(self) -> bytes:
        return self.keys[0]

    def find(self, identifier: bytes) -> bytes | None:
        """Return the key whose id is `identifier`, or None when the ring has none."""
        return self._by_id.get(identifier)

    def ids(self) -> list[str]:
        """Return the hex key ids, the sending key first."""
        return [key_id(key).hex() for key in self.keys]

    def __repr__(self) -> str:
        return f"KeyRing(source={self.source!r}, key_ids={self.ids()})"


_HEX = re.compile(r"[0-9a-fA-F]+")


def parse_keys(text: str, source: str, separator: str | None = None) -> KeyRing:
    """Parse hex keys, one per line (or split by `separator`), into a key ring.

    Blank entries and lines starting with `#` are skipped. Error messages name
    the source and the entry number, never the entry itself, because it may be
    a key.
    """
    entries = text.split(separator) if separator is not None else text.splitlines()
    keys: list[bytes] = []
    for number, raw in enumerate(entries, start=1):
        entry = raw.strip()
        if not entry or entry.startswith("#"):
            continue
        if separator is None:
            location = _("{source} line {number}").format(source=source, number=number)
        else:
            location = _("{source} entry {number}").format(source=source, number=number)
        if not _HEX.fullmatch(entry) or len(entry) % 2:
            raise KeyConfigError(
                _("{location} is not a hex key (an even number of digits 0-9, a-f); generate one with: {hint}")
                .format(location=location, hint=KEY_GENERATE_HINT)
            )
        key = bytes.fromhex(entry)
        if len(key) < MIN_KEY_BYTES:
            raise KeyConfigError(
                _("{location} is a key of {size} bytes; at least {minimum} bytes ({digits} hex digits) are "
                  "required; generate one with: {hint}").format(
                    location=location, size=len(key), minimum=MIN_KEY_BYTES, digits=2 * MIN_KEY_BYTES,
                    hint=KEY_GENERATE_HINT)
            )
        if key not in keys:
            keys.append(key)
    if not keys:
        if separator is None:
            message = _("{source} holds no key; write one hex key per line, generated with: {hint}")
        else:
            message = _("{source} holds no key; give hex keys separated by commas, generated with: {hint}")
        raise KeyConfigError(message.format(source=source, hint=KEY_GENERATE_HINT))
    return KeyRing(tuple(keys), source)


def load_key_file(path: Path, setting: str) -> KeyRing:
    """Read a key ring from `path`, named in errors by `setting` (a flag or variable name)."""
    source = f"{setting} {path}"
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise KeyConfigError(_("{source} not found; create it with: {hint} > {path}").format(
            source=source, hint=KEY_GENERATE_HINT, path=path)) from None
    except OSError as error:
        raise KeyConfigError(_("cannot read {source}: {reason}; check its path and permissions").format(
            source=source, reason=describe_os_error(error))) from None
    try:
        text = data.decode("ascii")
    except UnicodeDecodeError:
        raise KeyConfigError(_("{source} is not a text file of hex keys; write one hex key per line").format(
            source=source)) from None
    return parse_keys(text, source)


def generate_key() -> bytes:
    return secrets.token_bytes(MIN_KEY_BYTES)


def write_key_file(path: Path, key: bytes, replace: bool = True) -> bool:
    """Write `key` in hex to `path` with mode 0600; return False if `replace` is off and it exists.

    The file appears whole or not at all: the key goes to a temporary file
    first, which is then renamed (`replace`) or hard-linked (no `replace`, so
    two processes creating the same file agree on one key).
    """
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="ascii") as file:
            file.write(key.hex() + "\n")
            file.flush()
            os.fsync(file.fileno())
        if replace:
            os.replace(temporary, path)
            return True
        try:
            os.link(temporary, path)
        except FileExistsError:
            return False
        return True
    finally:
        if temporary.exists():
            temporary.unlink()


# --- Tags --------------------------------------------------------------------------------


def challenge_tag(key: bytes, nonce: bytes, challenge: bytes) -> bytes:
    """Return the accepting node's proof that it holds `key`, bound to the connecting node's nonce."""
    return hmac.digest(key, _CHALLENGE_LABEL + nonce + challenge, "sha256")


def hello_tag(key: bytes, challenge: bytes, nonce: bytes, hello: bytes) -> bytes:
    return hmac.digest(key, _HELLO_LABEL + challenge + nonce + hello, "sha256")


def frame_tag(key: bytes, challenge: bytes, sequence: int, payload: bytes) -> bytes:
    return hmac.digest(key, _DATA_LABEL + challenge + _SEQUENCE.pack(sequence) + payload, "sha256")


def _data_hasher(key: bytes, challenge: bytes) -> Any:
    """Return an HMAC object already fed the label and challenge; `.copy()` it per frame.

    With OpenSSL this is the C object that `hmac.HMAC` wraps. Its copy, update
    and digest skip a Python call each, which saves about a fifth of the time
    to seal and check a small frame (measured like benchmarks/auth_bench.py).
    """
    if _openssl_hmac_new is not None:
        return _openssl_hmac_new(key, _DATA_LABEL + challenge, digestmod="sha256")
    return hmac.new(key, _DATA_LABEL + challenge, hashlib.sha256)


# --- Frames ------------------------------------------------------------------------------


def _frame(kind: FrameKind, *parts: bytes) -> bytes:
    body = b"".join(parts)
    return _LENGTH.pack(2 + len(body)) + bytes((PEER_WIRE_VERSION, kind)) + body


def open_frame(nonce: bytes) -> bytes:
    _check_nonce(nonce, "nonce")
    return _frame(FrameKind.OPEN, nonce)


def challenge_frame(key: bytes, nonce: bytes, challenge: bytes) -> bytes:
    _check_nonce(challenge, "challenge")
    return _frame(FrameKind.CHALLENGE, key_id(key), challenge, challenge_tag(key, nonce, challenge))


def encode_hello(role: str, node: int, to_role: str, to_node: int) -> bytes:
    document = {"role": role, "node": node, "to_role": to_role, "to_node": to_node}
    return json.dumps(document, sort_keys=True, separators=(",", ":")).encode("ascii")


def hello_frame(key: bytes, challenge: bytes, nonce: bytes, hello: bytes) -> bytes:
    return _frame(FrameKind.HELLO, key_id(key), hello_tag(key, challenge, nonce, hello), hello)


def data_frame(key: bytes, challenge: bytes, sequence: int, payload: bytes) -> bytes:
    """Wrap `payload` (a message frame without its length prefix) as DATA number `sequence`."""
    return _frame(
        FrameKind.DATA, _SEQUENCE.pack(sequence), frame_tag(key, challenge, sequence, payload), payload
    )


def _check_nonce(value: bytes, name: str) -> None:
    if len(value) != NONCE_BYTES:
        raise ValueError(f"{name} must be {NONCE_BYTES} bytes, got {len(value)}")


def _kind(envelope: bytes) -> FrameKind:
    """Return the kind of a cluster-port frame (the bytes after its length prefix)."""
    if not envelope:
        raise AuthError(RejectReason.MALFORMED, "empty frame")
    if envelope[0] == WIRE_VERSION:
        raise AuthError(RejectReason.MISSING_TAG, "untagged message frame on the cluster port")
    if envelope[0] != PEER_WIRE_VERSION:
        raise AuthError(
            RejectReason.MALFORMED, f"unsupported peer frame version {envelope[0]}, expected {PEER_WIRE_VERSION}"
        )
    if len(envelope) < 2:
        raise AuthError(RejectReason.MALFORMED, "frame ends before its kind byte")
    try:
        return FrameKind(envelope[1])
    except ValueError:
        raise AuthError(RejectReason.MALFORMED, f"unknown peer frame kind {envelope[1]}") from None


def _fields(envelope: bytes, kind: FrameKind, sizes: Iterable[int], rest: bool) -> list[bytes]:
    """Split the fields of `envelope` after its 2-byte header; `rest` keeps trailing bytes as one more field."""
    fields = []
    offset = 2
    for size in sizes:
        if len(envelope) < offset + size:
            raise AuthError(RejectReason.MALFORMED, f"{kind.name} frame of {len(envelope)} bytes is truncated")
        fields.append(envelope[offset : offset + size])
        offset += size
    if rest:
        fields.append(envelope[offset:])
    elif offset != len(envelope):
        raise AuthError(RejectReason.MALFORMED, f"{kind.name} frame has {len(envelope) - offset} extra bytes")
    return fields


# --- Connection state ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Hello:
    role: str
    node: int
    to_role: str
    to_node: int


def parse_hello(body: bytes) -> Hello:
    """Decode a verified HELLO body, or raise AuthError(BAD_HELLO)."""
    try:
        document = json.loads(body.decode("ascii"))
    except (UnicodeDecodeError, ValueError):
        raise AuthError(RejectReason.BAD_HELLO, "hello is not ASCII JSON") from None
    if type(document) is not dict or set(document) != {"role", "node", "to_role", "to_node"}:
        raise AuthError(RejectReason.BAD_HELLO, "hello must be an object with role, node, to_role and to_node")
    role, node, to_role, to_node = (document[name] for name in ("role", "node", "to_role", "to_node"))
    if type(role) is not str or type(to_role) is not str or type(node) is not int or type(to_node) is not int:
        raise AuthError(RejectReason.BAD_HELLO, "hello roles must be strings and node ids integers")
    return Hello(role, node, to_role, to_node)


class Acceptor:
    """The accepting side of one peer connection: OPEN, then HELLO, then DATA frames.

    `peers` lists every (role, node id) allowed to connect, so a HELLO naming
    anything else is rejected as an unknown node.
    """

    def __init__(
        self, ring: KeyRing, role: str, node: int, peers: Collection[tuple[str, int]], challenge: bytes
    ) -> None:
        _check_nonce(challenge, "challenge")
        self.ring = ring
        self.role = role
        self.node = node
        self.peers = peers
        self.challenge = challenge
        self.nonce: bytes | None = None
        self.hello: Hello | None = None
        self.last_sequence = 0
        self._hasher: Any = None

    @property
    def established(self) -> bool:
        return self.hello is not None

    def receive_open(self, envelope: bytes) -> bytes:
        """Take the OPEN frame and return the CHALLENGE frame to send back."""
        kind = _kind(envelope)
        if kind is not FrameKind.OPEN or self.nonce is not None:
            raise AuthError(RejectReason.BAD_HELLO, f"expected OPEN to start the connection, got {kind.name}")
        (nonce,) = _fields(envelope, kind, (NONCE_BYTES,), rest=False)
        self.nonce = nonce
        return challenge_frame(self.ring.send_key, nonce, self.challenge)

    def receive_hello(self, envelope: bytes) -> Hello:
        """Verify the HELLO frame and return who connected; DATA frames may follow."""
        kind = _kind(envelope)
        if kind is not FrameKind.HELLO or self.nonce is None or self.hello is not None:
            raise AuthError(RejectReason.BAD_HELLO, f"expected HELLO after the challenge, got {kind.name}")
        identifier, tag, body = _fields(envelope, kind, (KEY_ID_BYTES, TAG_BYTES), rest=True)
        key = self.ring.find(identifier)
        if key is None:
            raise AuthError(
                RejectReason.UNKNOWN_KEY,
                f"hello tagged with key id {identifier.hex()}, which is not in the key ring {self.ring.ids()}",
            )
        if not hmac.compare_digest(tag, hello_tag(key, self.challenge, self.nonce, body)):
            raise AuthError(RejectReason.WRONG_TAG, "hello tag does not match")

        hello = parse_hello(body)
        if (hello.role, hello.node) not in self.peers:
            raise AuthError(
                RejectReason.UNKNOWN_NODE, f"hello from {_preview(hello.role)} {hello.node}, not a peer of this node"
            )
        if (hello.to_role, hello.to_node) != (self.role, self.node):
            raise AuthError(
                RejectReason.BAD_HELLO,
                f"hello meant for {_preview(hello.to_role)} {hello.to_node}, reached {self.role} {self.node}",
            )
        self.hello = hello
        self._hasher = _data_hasher(key, self.challenge)
        return hello

    def receive_data(self, envelope: bytes) -> bytes:
        """Verify one DATA frame and return its payload (a message frame without the length prefix)."""
        if self._hasher is None or envelope[:2] != _DATA_HEADER:
            self._reject_header(envelope)
        if len(envelope) < DATA_OVERHEAD_BYTES:
            raise AuthError(RejectReason.MALFORMED, f"DATA frame of {len(envelope)} bytes is truncated")
        raw_sequence = envelope[2 : 2 + SEQUENCE_BYTES]
        tag = envelope[2 + SEQUENCE_BYTES : DATA_OVERHEAD_BYTES]
        payload = envelope[DATA_OVERHEAD_BYTES:]
        hasher = self._hasher.copy()
        hasher.update(raw_sequence)
        hasher.update(payload)
        if not hmac.compare_digest(tag, hasher.digest()):
            raise AuthError(RejectReason.WRONG_TAG, "frame tag does not match")

        (sequence,) = _SEQUENCE.unpack(raw_sequence)
        if sequence <= self.last_sequence:
            raise AuthError(
                RejectReason.REPLAYED_FRAME, f"sequence number {sequence}, already at {self.last_sequence}"
            )
        if sequence != self.last_sequence + 1:
            raise AuthError(
                RejectReason.WRONG_SEQUENCE, f"sequence number {sequence}, expected {self.last_sequence + 1}"
            )
        self.last_sequence = sequence
        return payload

    def _reject_header(self, envelope: bytes) -> NoReturn:
        """Raise the AuthError for a frame that is not a DATA frame after the hello."""
        kind = _kind(envelope)
        if self._hasher is None:
            raise AuthError(RejectReason.BAD_HELLO, f"{kind.name} frame before the hello")
        if kind is FrameKind.HELLO:
            raise AuthError(RejectReason.BAD_HELLO, "hello repeated on an open connection")
        raise AuthError(RejectReason.MALFORMED, f"{kind.name} frame on an open connection")


class Connector:
    """The connecting side of one peer connection: OPEN, verify CHALLENGE, HELLO, then DATA frames."""

    def __init__(self, ring: KeyRing, role: str, node: int, to_role: str, to_node: int, nonce: bytes) -> None:
        _check_nonce(nonce, "nonce")
        self.ring = ring
        self.hello = encode_hello(role, node, to_role, to_node)
        self.nonce = nonce
        self.challenge: bytes | None = None
        self.sequence = 0
        self._hasher: Any = None

    def open_frame(self) -> bytes:
        return open_frame(self.nonce)

    def receive_challenge(self, envelope: bytes) -> bytes:
        """Verify the CHALLENGE frame and return the HELLO frame to send."""
        kind = _kind(envelope)
        if kind is not FrameKind.CHALLENGE or self.challenge is not None:
            raise AuthError(RejectReason.BAD_HELLO, f"expected CHALLENGE after OPEN, got {kind.name}")
        identifier, challenge, tag = _fields(envelope, kind, (KEY_ID_BYTES, NONCE_BYTES, TAG_BYTES), rest=False)
        key = self.ring.find(identifier)
        if key is None:
            raise AuthError(
                RejectReason.UNKNOWN_KEY,
                f"challenge tagged with key id {identifier.hex()}, which is not in the key ring {self.ring.ids()}",
            )
        if not hmac.compare_digest(tag, challenge_tag(key, self.nonce, challenge)):
            raise AuthError(RejectReason.WRONG_TAG, "challenge tag does not match")

        self.challenge = challenge
        send_key = self.ring.send_key
        self._hasher = _data_hasher(send_key, challenge)
        return hello_frame(send_key, challenge, self.nonce, self.hello)

    def seal(self, frame: bytes) -> bytes:
        """Wrap one message frame of `cluster.wire.encode` (length prefix included) as the next DATA frame."""
        if self._hasher is None:
            raise RuntimeError("seal called before the challenge was verified")
        if self.sequence >= _MAX_SEQUENCE:
            raise RuntimeError("sequence numbers of this connection are exhausted; reconnect")
        self.sequence += 1
        raw_sequence = _SEQUENCE.pack(self.sequence)
        payload = memoryview(frame)[_LENGTH.size :]
        hasher = self._hasher.copy()
        hasher.update(raw_sequence)
        hasher.update(payload)
        header = _LENGTH.pack(DATA_OVERHEAD_BYTES + len(payload))
        return b"".join((header, _DATA_HEADER, raw_sequence, hasher.digest(), payload))


def _preview(value: str) -> str:
    """Return `value` quoted and cut to 40 characters, for text a peer chose."""
    return repr(value[:40])


# --- Rejection counts ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RejectionReport:
    """One log line and event for a reason: the total so far and what happened since the last report."""

    reason: RejectReason
    count: int  # rejections for this reason since the node started
    new: int  # rejections since the previous report for this reason
    peer: str  # address of the latest rejected peer
    detail: str  # why the latest frame was rejected


@dataclass(slots=True)
class RejectionCounter:
    """Count rejections per reason and report each reason at most once per `interval` seconds.

    The first rejection of a reason is reported at once. Later ones within the
    interval are only counted, and `due` reports them once it has passed, so a
    flood of bad connections costs one log line per reason per interval.
    """

    interval: float
    counts: dict[RejectReason, int] = field(default_factory=dict)
    _reported: dict[RejectReason, int] = field(default_factory=dict)
    _last_report: dict[RejectReason, float] = field(default_factory=dict)
    _latest: dict[RejectReason, tuple[str, str]] = field(default_factory=dict)

    def record(self, reason: RejectReason, peer: str, detail: str, now: float) -> list[RejectionReport]:
        self.counts[reason] = self.counts.get(reason, 0) + 1
        self._latest[reason] = (peer, detail)
        return self.due(now)

    def due(self, now: float) -> list[RejectionReport]:
        """Return a report for every reason with unreported rejections whose interval has passed."""
        reports = []
        for reason, count in self.counts.items():
            reported = self._reported.get(reason, 0)
            if count == reported:
                continue
            last = self._last_report.get(reason)
            if last is not None and now - last < self.interval:
                continue
            peer, detail = self._latest[reason]
            reports.append(RejectionReport(reason, count, count - reported, peer, detail))
            self._reported[reason] = count
            self._last_report[reason] = now
        return reports

    @property
    def pending(self) -> bool:
        return any(count != self._reported.get(reason, 0) for reason, count in self.counts.items())
