"""Tests for the frame codec: round trips, and each way a peer can break a frame."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import enum
import itertools
import json
import re
import struct
import typing
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cluster import wire
from cluster.core import messages
from cluster.core.messages import (
    ClientMark,
    ClientRequest,
    Commit,
    Entry,
    EpochReady,
    NewEpoch,
    Replicate,
    StatusRequest,
    StoreConfig,
    StorePing,
)

# --- Strategies built from the dataclass annotations ---------------------------------

WIRE_INTS = st.integers(min_value=0, max_value=wire.MAX_WIRE_INT)
SMALL_TEXT = st.text(max_size=40)


def strategy_for(hint: Any) -> st.SearchStrategy[Any]:
    """Return a strategy of valid wire values for one field annotation."""
    if hint is bool:
        return st.booleans()
    if hint is int:
        return WIRE_INTS
    if hint is str:
        return SMALL_TEXT
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return st.sampled_from(list(hint))
    if dataclasses.is_dataclass(hint) and isinstance(hint, type):
        return message_strategy(hint)
    arguments = typing.get_args(hint)
    if type(None) in arguments:
        (item,) = (argument for argument in arguments if argument is not type(None))
        return st.none() | strategy_for(item)
    assert typing.get_origin(hint) is tuple, hint
    return st.lists(strategy_for(arguments[0]), max_size=4).map(tuple)


def message_strategy(cls: type) -> st.SearchStrategy[Any]:
    hints = typing.get_type_hints(cls)
    fields = {field.name: strategy_for(hints[field.name]) for field in dataclasses.fields(cls)}
    return st.builds(cls, **fields)


ALL_TYPES = list(messages.MESSAGE_TYPES.values())


def payload(frame: bytes) -> bytes:
    return frame[wire.LENGTH_BYTES :]


def json_frame(document: object, version: int = wire.WIRE_VERSION) -> bytes:
    """Build the payload of a frame (version byte + JSON) from any JSON document."""
    return bytes([version]) + json.dumps(document).encode("ascii")


def replicate_document(**changes: Any) -> dict[str, Any]:
    document: dict[str, Any] = {
        "type": "Replicate",
        "epoch": 1,
        "primary": 1,
        "prev_seq": 0,
        "entries": [[1, 1, 1, 2, 1, "a"], [2, 1, 2, 2, 2, "b"]],
        "commit": 0,
    }
    document.update(changes)
    return document


def with_prefix(body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + body


# --- Round trips ------------------------------------------------------------------------


@pytest.mark.parametrize("cls", ALL_TYPES, ids=lambda cls: cls.__name__)
@settings(max_examples=30)
@given(data=st.data())
def test_round_trip(cls: type, data: st.DataObject) -> None:
    message = data.draw(message_strategy(cls))

    frame = wire.encode(message)

    assert wire.decode_payload(payload(frame)) == message


@given(
    batch=st.lists(st.one_of([message_strategy(cls) for cls in ALL_TYPES]), max_size=8),
    cuts=st.lists(st.integers(min_value=0, max_value=5000), max_size=10),
)
def test_decoder_split_stream(batch: list[Any], cuts: list[int]) -> None:
    stream = b"".join(wire.encode(message) for message in batch)
    points = sorted({min(cut, len(stream)) for cut in cuts} | {0, len(stream)})
    decoder = wire.FrameDecoder()

    decoded = []
    for start, end in itertools.pairwise(points):
        decoded.extend(decoder.feed(stream[start:end]))

    assert decoded == batch
    assert decoder.buffered == 0


def test_length_prefix_counts_payload() -> None:
    frame = wire.encode(Commit(epoch=2, commit=9))

    (length,) = struct.unpack(">I", frame[:4])

    assert length == len(frame) - 4
    assert frame[4] == wire.WIRE_VERSION


def test_entries_encoded_as_arrays() -> None:
    entry = Entry(seq=1, term=2, lamport=3, client_id=4, request_id=5, text="tab\there é")
    message = Replicate(epoch=1, primary=1, prev_seq=0, entries=(entry,), commit=0)

    document = json.loads(payload(wire.encode(message))[1:])

    assert document["entries"] == [[1, 2, 3, 4, 5, "tab\there é"]]


def test_encoding_compact_utf8() -> None:
    message = ClientRequest(client_id=1, request_id=2, lamport=3, text="é")

    body = payload(wire.encode(message))[1:]

    expected = '{"type":"ClientRequest","client_id":1,"request_id":2,"lamport":3,"text":"é"}'
    assert body == expected.encode("utf-8")


def test_config_encoded_as_object() -> None:
    config = StoreConfig(epoch=4, term=3, primary=2, backups=(1, 3))

    document = json.loads(payload(wire.encode(NewEpoch(3, 1, config)))[1:])

    assert document["config"] == json.loads(json.dumps(dataclasses.asdict(config)))


def test_marks_encoded_as_arrays() -> None:
    mark = ClientMark(client_id=1, request_id=2, seq=3, term=4, lamport=5)
    ready = EpochReady(term=3, epoch=4, primary=2, last_seq=3, last_lamport=5, clients=(mark,))

    document = json.loads(payload(wire.encode(ready))[1:])

    assert document["clients"] == [[getattr(mark, f.name) for f in dataclasses.fields(mark)]]


def test_optional_config_null() -> None:
    message = StorePing(term=1, leader=2, config=None)

    document = json.loads(payload(wire.encode(message))[1:])

    assert document["config"] is None
    assert wire.decode_payload(payload(wire.encode(message))) == message


def test_text_at_limit_accepted() -> None:
    message = ClientRequest(1, 1, 1, "é" * (messages.MAX_TEXT_BYTES // 2))

    assert wire.decode_payload(payload(wire.encode(message))) == message


def test_message_union_matches_types() -> None:
    assert set(typing.get_args(wire.Message)) == set(ALL_TYPES)


def test_encode_non_message() -> None:
    with pytest.raises(TypeError, match="not a message type"):
        wire.encode(Entry(1, 1, 1, 1, 1, "x"))  # type: ignore[arg-type]


def test_encode_frame_over_limit() -> None:
    text = "\x01" * messages.MAX_TEXT_BYTES  # JSON escapes each control character to 6 bytes
    entries = tuple(Entry(i, 1, i, 1, i, text) for i in range(1, 50))
    message = Replicate(epoch=1, primary=1, prev_seq=0, entries=entries, commit=0)

    with pytest.raises(ValueError, match="exceeds MAX_FRAME_BYTES"):
        wire.encode(message)


# --- Each ProtocolError subclass from a concrete bad frame -------------------------------


def test_random_bytes_malformed() -> None:
    with pytest.raises(wire.MalformedFrame, match="not valid JSON"):
        wire.decode_payload(b"\x01\x13\x12garbage{")


def test_truncated_payload_malformed() -> None:
    frame = wire.encode(Commit(epoch=1, commit=2))
    cut = payload(frame)[:-3]

    with pytest.raises(wire.MalformedFrame, match="not valid JSON"):
        wire.FrameDecoder().feed(with_prefix(cut))


def test_empty_frame_malformed() -> None:
    with pytest.raises(wire.MalformedFrame, match="length prefix is 0"):
        wire.FrameDecoder().feed(struct.pack(">I", 0))


def test_oversize_prefix_rejected_early() -> None:
    decoder = wire.FrameDecoder()

    with pytest.raises(wire.FrameTooLarge, match=str(wire.MAX_FRAME_BYTES + 1)):
        decoder.feed(struct.pack(">I", wire.MAX_FRAME_BYTES + 1))

    assert decoder.buffered == 0


def test_decoder_stays_failed() -> None:
    decoder = wire.FrameDecoder()
    with pytest.raises(wire.FrameTooLarge):
        decoder.feed(struct.pack(">I", 2**32 - 1))

    with pytest.raises(wire.FrameTooLarge):
        decoder.feed(wire.encode(Commit(1, 1)))


def test_wrong_version() -> None:
    with pytest.raises(wire.UnsupportedVersion, match="version 2, expected 1"):
        wire.decode_payload(json_frame({"type": "Commit", "epoch": 1, "commit": 1}, version=2))


@pytest.mark.parametrize("type_name", ["Nope", 7, None, "entry"])
def test_unknown_type(type_name: object) -> None:
    with pytest.raises(wire.UnknownMessageType, match="unknown message type"):
        wire.decode_payload(json_frame({"type": type_name}))


def test_missing_type_member() -> None:
    with pytest.raises(wire.MalformedFrame, match='no "type" member'):
        wire.decode_payload(json_frame({"epoch": 1, "commit": 1}))


@pytest.mark.parametrize("document", [[1, 2], "Commit", 3, None], ids=repr)
def test_non_object_payload(document: object) -> None:
    with pytest.raises(wire.MalformedFrame, match="expected a JSON object"):
        wire.decode_payload(json_frame(document))


BAD_FIELDS = [
    ("bool_for_int", {"epoch": True}, "Replicate.epoch", "not a boolean"),
    ("float_for_int", {"commit": 1.0}, "Replicate.commit", "fraction or exponent"),
    ("string_for_int", {"commit": "1"}, "Replicate.commit", "not a string"),
    ("null_for_int", {"commit": None}, "Replicate.commit", "not null"),
    ("negative_int", {"prev_seq": -1}, "Replicate.prev_seq", "from 0 to"),
    ("int_beyond_64_bits", {"commit": 2**64}, "Replicate.commit", "from 0 to"),
    ("int_just_beyond", {"commit": 2**63}, "Replicate.commit", "from 0 to"),
    ("entries_not_array", {"entries": {}}, "Replicate.entries", "expected an array"),
    ("entry_short", {"entries": [[1, 1, 1, 1, 1]]}, "Replicate.entries[0]", "array of 6"),
    ("entry_as_object", {"entries": [{"seq": 1}]}, "Replicate.entries[0]", "array of 6"),
    ("negative_seq", {"entries": [[1, 1, 1, 1, 1, "a"], [-2, 1, 1, 1, 1, "b"]]},
     "Replicate.entries[1].seq", "from 0 to"),
    ("bool_lamport", {"entries": [[1, 1, False, 1, 1, "a"]]},
     "Replicate.entries[0].lamport", "not a boolean"),
    ("int_text", {"entries": [[1, 1, 1, 1, 1, 5]]}, "Replicate.entries[0].text", "not an integer"),
    ("text_over_limit", {"entries": [[1, 1, 1, 1, 1, "x" * (messages.MAX_TEXT_BYTES + 1)]]},
     "Replicate.entries[0].text", "exceeds the limit"),
    ("multibyte_over_limit",
     {"entries": [[1, 1, 1, 1, 1, "é" * (messages.MAX_TEXT_BYTES // 2 + 1)]]},
     "Replicate.entries[0].text", "exceeds the limit"),
    ("lone_surrogate", {"entries": [[1, 1, 1, 1, 1, "\ud800"]]},
     "Replicate.entries[0].text", "lone surrogate"),
    ("extra_field", {"hint": 3}, "Replicate.hint", "unexpected field"),
]


@pytest.mark.parametrize(
    ("changes", "field", "reason"),
    [case[1:] for case in BAD_FIELDS],
    ids=[case[0] for case in BAD_FIELDS],
)
def test_invalid_field(changes: dict[str, Any], field: str, reason: str) -> None:
    with pytest.raises(wire.InvalidField) as caught:
        wire.decode_payload(json_frame(replicate_document(**changes)))

    assert f"invalid field {field}:" in str(caught.value)
    assert reason in str(caught.value)


def compact_frame(document: object) -> bytes:
    """Build a payload in the compact form that `wire.encode` writes, so decoding takes the orjson path."""
    try:
        body = orjson.dumps(document)
    except orjson.JSONEncodeError:  # a lone surrogate or an integer beyond 64 bits
        body = json.dumps(document, separators=(",", ":")).encode("ascii")
    return bytes([wire.WIRE_VERSION]) + body


def decode_error(payload: bytes) -> wire.ProtocolError:
    with pytest.raises(wire.ProtocolError) as caught:
        wire.decode_payload(payload)
    return caught.value


@pytest.mark.parametrize("changes", [case[1] for case in BAD_FIELDS], ids=[case[0] for case in BAD_FIELDS])
def test_invalid_field_compact_same_error(changes: dict[str, Any]) -> None:
    document = replicate_document(**changes)

    compact = decode_error(compact_frame(document))
    spaced = decode_error(json_frame(document))

    assert type(compact) is type(spaced)
    assert str(compact) == str(spaced)


@pytest.mark.parametrize(
    "body",
    [
        b'{"type":"Commit","epoch":1,"epoch":2,"commit":1}',
        b'{"type":"Commit","epoch":1,"commit":1,"commit":1}',
        b'{"type":"NewEpoch","term":1,"leader":1,"config":{"epoch":1,"epoch":1,"term":1,"primary":1,"backups":[]}}',
    ],
    ids=["top_level", "same_value", "nested_object"],
)
def test_compact_duplicate_key(body: bytes) -> None:
    with pytest.raises(wire.MalformedFrame, match="duplicate key"):
        wire.decode_payload(b"\x01" + body)


@pytest.mark.parametrize("depth", [300, 1000, 1020])
def test_compact_deep_nesting(depth: int) -> None:
    body = b'{"type":"Commit","epoch":' + b"[" * depth + b"]" * depth + b',"commit":1}'

    spaced = decode_error(b"\x01" + body.replace(b",", b", "))
    compact = decode_error(b"\x01" + body)

    assert type(compact) is type(spaced)
    assert str(compact) == str(spaced)


@pytest.mark.parametrize(
    "body",
    [b'{"type":"Commit","epoch":1.0,"commit":1}', b'{"type":"Commit","epoch":-0,"commit":1}',
     b'{"type":"Commit","epoch":18446744073709551616,"commit":1}', b'{"type":"Commit","epoch":1E2,"commit":1}',
     b'{"type":"ClientRequest","client_id":1,"request_id":1,"lamport":1,"text":"\\u0041\\ud800"}'],
    ids=["float", "negative_zero", "beyond_64_bits", "exponent", "escaped_surrogate"],
)
def test_compact_numbers_and_escapes(body: bytes) -> None:
    assert decode_outcome(b"\x01" + body) == decode_outcome(b"\x01" + body.replace(b",", b", "))


def decode_outcome(payload: bytes) -> object:
    """Return the decoded message, or the type and text of the ProtocolError."""
    try:
        return wire.decode_payload(payload)
    except wire.ProtocolError as error:
        return type(error), str(error)


@pytest.mark.parametrize("cls", ALL_TYPES, ids=lambda cls: cls.__name__)
@settings(max_examples=20)
@given(data=st.data())
def test_encode_matches_json_module(cls: type, data: st.DataObject) -> None:
    message = data.draw(message_strategy(cls))
    table = wire._TABLES_BY_CLASS[cls]

    encoded = payload(wire.encode(message))[1:]

    assert json.loads(encoded) == json.loads(wire._encode_with_json(table, message))


def test_encode_lone_surrogate() -> None:
    with pytest.raises(ValueError, match="surrogate"):
        wire.encode(ClientRequest(1, 1, 1, "\ud800"))


def test_encode_int_beyond_64_bits() -> None:
    frame = wire.encode(Commit(epoch=2**64, commit=1))

    with pytest.raises(wire.InvalidField, match=r"Commit\.epoch: expected an integer from 0 to"):
        wire.decode_payload(payload(frame))


def test_missing_field() -> None:
    document = replicate_document()
    del document["commit"]

    with pytest.raises(wire.InvalidField, match=r"Replicate\.commit: missing field$"):
        wire.decode_payload(json_frame(document))


def config_document(**changes: Any) -> dict[str, Any]:
    """Return a valid encoded StoreConfig with `changes` applied (None deletes a key)."""
    config = StoreConfig(epoch=1, term=1, primary=1, backups=(2, 3))
    document: dict[str, Any] = json.loads(json.dumps(dataclasses.asdict(config)))
    for key, value in changes.items():
        if value is None:
            del document[key]
        else:
            document[key] = value
    return document


@pytest.mark.parametrize(
    ("config", "field"),
    [
        (config_document(backups=None), "NewEpoch.config.backups"),
        (config_document(x=1), "NewEpoch.config.x"),
        (config_document(backups=[2, -3]), "NewEpoch.config.backups[1]"),
        (list(config_document().values()), "NewEpoch.config"),
    ],
    ids=["missing", "extra", "negative_backup", "array"],
)
def test_invalid_config(config: object, field: str) -> None:
    document = {"type": "NewEpoch", "term": 1, "leader": 1, "config": config}

    with pytest.raises(wire.InvalidField, match=re.escape(f"invalid field {field}:")):
        wire.decode_payload(json_frame(document))


def test_invalid_enum_value() -> None:
    document = {
        "type": "WriteReject", "term": 1, "epoch": 1, "node": 1,
        "reason": "STALE_EPOCH", "expected_seq": 1,
    }

    with pytest.raises(wire.InvalidField, match="expected one of 'stale_epoch'"):
        wire.decode_payload(json_frame(document))


def test_invalid_field_value_shortened() -> None:
    text = "y" * (messages.MAX_TEXT_BYTES + 1)
    document = {
        "type": "ClientRequest", "client_id": 1, "request_id": 1, "lamport": 1, "text": text,
    }

    with pytest.raises(wire.InvalidField) as caught:
        wire.decode_payload(json_frame(document))

    assert len(str(caught.value)) < 200


def test_invalid_utf8() -> None:
    with pytest.raises(wire.MalformedFrame, match="not valid UTF-8"):
        wire.decode_payload(b'\x01{"type":"StatusRequest","\xc3\x28":1}')


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b'{"type":"Commit","epoch":1,"epoch":2,"commit":1}', "duplicate key"),
        (b'{"type":"Commit","epoch":NaN,"commit":1}', "NaN"),
        (b'{"type":"Commit","epoch":1,"commit":1} {}', "Extra data"),
        (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
        (b'{"type":"Commit","epoch":1' + b"0" * 5000 + b',"commit":1}', "not valid JSON"),
    ],
    ids=["duplicate_key", "nan", "trailing_data", "deep_nesting", "huge_int_literal"],
)
def test_invalid_json(body: bytes, reason: str) -> None:
    with pytest.raises(wire.MalformedFrame, match=reason):
        wire.decode_payload(b"\x01" + body)


def test_status_request_no_fields() -> None:
    assert wire.decode_payload(json_frame({"type": "StatusRequest"})) == StatusRequest()


# --- Fuzzing: anything either decodes or raises ProtocolError ---------------------------


def decode_all(data: bytes) -> None:
    decoder = wire.FrameDecoder()
    with contextlib.suppress(wire.ProtocolError):
        decoder.feed(data)


@settings(max_examples=300)
@given(data=st.binary(max_size=200))
def test_fuzz_raw_bytes(data: bytes) -> None:
    decode_all(data)


@settings(max_examples=300)
@given(body=st.binary(max_size=200), version=st.sampled_from([0, 1, 1, 1, 2]))
def test_fuzz_framed_bytes(body: bytes, version: int) -> None:
    decode_all(with_prefix(bytes([version]) + body))


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=6) | st.dictionaries(st.text(max_size=8), children)
    ),
    max_leaves=20,
)


@settings(max_examples=300)
@given(
    type_name=st.sampled_from(list(messages.MESSAGE_TYPES)),
    fields=st.dictionaries(st.text(max_size=12), JSON_VALUES, max_size=8),
)
def test_fuzz_json_fields(type_name: str, fields: dict[str, Any]) -> None:
    decode_all(with_prefix(json_frame({**fields, "type": type_name})))


@settings(max_examples=200)
@given(message=st.one_of([message_strategy(cls) for cls in ALL_TYPES]), data=st.data())
def test_fuzz_mutated_frame(message: Any, data: st.DataObject) -> None:
    frame = bytearray(wire.encode(message))
    position = data.draw(st.integers(min_value=0, max_value=len(frame) - 1))
    frame[position] = data.draw(st.integers(min_value=0, max_value=255))

    decode_all(bytes(frame))


# --- read_frame on a real StreamReader --------------------------------------------------


def read_from(*chunks: bytes, eof: bool = True) -> Any:
    """Feed `chunks` (then EOF) to a new StreamReader and return the outcome of read_frame."""

    async def run() -> Any:
        reader = asyncio.StreamReader()
        for chunk in chunks:
            reader.feed_data(chunk)
        if eof:
            reader.feed_eof()
        return await asyncio.wait_for(wire.read_frame(reader), timeout=5)

    return asyncio.run(run())


def test_read_frame_message() -> None:
    message = Commit(epoch=3, commit=8)

    assert read_from(wire.encode(message)) == message


def test_read_frame_split_chunks() -> None:
    frame = wire.encode(ClientRequest(1, 2, 3, "hello"))

    assert read_from(frame[:2], frame[2:7], frame[7:], eof=False) == ClientRequest(1, 2, 3, "hello")


def test_read_frame_clean_eof() -> None:
    with pytest.raises(EOFError, match="closed by the peer"):
        read_from()


def test_read_frame_eof_in_prefix() -> None:
    with pytest.raises(wire.MalformedFrame, match="after 2 of 4 length prefix bytes"):
        read_from(b"\x00\x00")


def test_read_frame_eof_in_payload() -> None:
    frame = wire.encode(Commit(epoch=3, commit=8))

    with pytest.raises(wire.MalformedFrame, match=f"after 5 of {len(frame) - 4} frame bytes"):
        read_from(frame[:9])


def test_read_frame_oversize_early() -> None:
    # No EOF and no payload: a reader that waited for the payload would time out.
    with pytest.raises(wire.FrameTooLarge):
        read_from(struct.pack(">I", wire.MAX_FRAME_BYTES + 1), eof=False)


def test_read_frame_invalid_field() -> None:
    with pytest.raises(wire.InvalidField, match=r"Replicate\.epoch"):
        read_from(with_prefix(json_frame(replicate_document(epoch=-5))))


# --- Row builder -------------------------------------------------------------------------


def test_decoded_entries_frozen() -> None:
    entries = tuple(Entry(seq, 1, seq, 2, seq, f"m{seq}") for seq in range(1, 4))
    message = Replicate(epoch=1, primary=1, prev_seq=0, entries=entries, commit=0)

    decoded = wire.decode_payload(payload(wire.encode(message)))

    assert isinstance(decoded, Replicate)
    assert [type(entry) for entry in decoded.entries] == [Entry] * 3
    assert [hash(entry) for entry in decoded.entries] == [hash(entry) for entry in entries]
    with pytest.raises(dataclasses.FrozenInstanceError):
        decoded.entries[0].seq = 9  # type: ignore[misc]


@dataclasses.dataclass(frozen=True, slots=True)
class CheckedRow:
    first: int
    second: str

    def __post_init__(self) -> None:
        if self.first > 5:
            raise ValueError(f"first {self.first} above 5")


def test_row_builder_runs_post_init() -> None:
    build = wire._row_builder(CheckedRow, ["first", "second"])
    rows: list[list[Any]] = [[1, "a"], [9, "b"]]

    with pytest.raises(ValueError, match="first 9 above 5"):
        build(rows, list(zip(*rows, strict=True)))


def test_row_builder_sets_slots() -> None:
    build = wire._row_builder(Entry, [field.name for field in dataclasses.fields(Entry)])
    rows: list[list[Any]] = [[1, 2, 3, 4, 5, "a"], [6, 7, 8, 9, 10, "b"]]

    built = build(rows, list(zip(*rows, strict=True)))

    assert built == (Entry(1, 2, 3, 4, 5, "a"), Entry(6, 7, 8, 9, 10, "b"))


def test_decoded_message_frozen() -> None:
    message = ClientRequest(client_id=3, request_id=4, lamport=5, text="hello")

    decoded = wire.decode_payload(payload(wire.encode(message)))

    assert type(decoded) is ClientRequest
    assert hash(decoded) == hash(message)
    with pytest.raises(dataclasses.FrozenInstanceError):
        decoded.text = "changed"  # type: ignore[misc]
