"""Frame codec for cluster messages: messages in, bytes out, and back.

A frame is a 4-byte big-endian unsigned length N followed by N bytes: one
byte of protocol version (`WIRE_VERSION`), then a UTF-8 JSON object
`{"type": "<ClassName>", <field>: <value>, ...}` for one dataclass of
`cluster.core.messages.MESSAGE_TYPES`. Entries and client marks are encoded as
JSON arrays of their fields in declaration order, because batches of hundreds
of entries are the hot path. A store configuration is an object, enums are
their values, tuples are arrays and an optional field that is None is null.

This module never touches a socket. Decoding is strict and driven by the
dataclass annotations, which are read once at import into per-class tables.
Every way a peer can break the format raises a subclass of `ProtocolError`,
whose message names the bad value. The caller logs it, closes that connection
and keeps serving the others.

orjson writes every frame and parses it first, and the standard library's
`json` module stays the reference parser. A payload is parsed again with
`json` when orjson rejects it, when it is not exactly the text orjson writes
for what it parsed, or when it fails the field checks. So every error is the
one that `json` and the full field checks give.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import enum
import itertools
import json
import operator
import reprlib
import struct
import types
import typing
from collections.abc import Callable
from typing import Any, NoReturn, cast

import orjson

from cluster.core import messages
from cluster.core.messages import (
    CatchUp,
    CatchUpReply,
    ClientReply,
    ClientRequest,
    Commit,
    EpochReady,
    EpochSync,
    EpochSyncReply,
    FetchEntries,
    FetchReply,
    Heartbeat,
    HeartbeatReply,
    NewEpoch,
    PreVote,
    PreVoteReply,
    Replicate,
    ReplicateReply,
    RequestVote,
    StatusReply,
    StatusRequest,
    StorePing,
    StoreStatus,
    VoteReply,
    Write,
    WriteAck,
    WriteReject,
)

WIRE_VERSION = 1

# The largest frame, counted after the 4-byte length prefix. A reader checks
# the prefix against this limit before it reads or buffers any of the payload,
# so a corrupt or hostile prefix cannot make a node allocate gigabytes. The
# batches of `cluster.core.batching` stay far below it: at most 256 entries and
# about 1 MiB of text, which JSON escaping can grow to at most about 1.5 MiB.
MAX_FRAME_BYTES = 4 * 1024 * 1024

LENGTH_BYTES = 4

# Every integer field in the messages counts something (terms, epochs, sequence
# numbers, ids, Lamport times), so the codec accepts 0 up to the signed 64-bit
# maximum, the range that other implementations can store.
MAX_WIRE_INT = 2**63 - 1

Message = (
    PreVote
    | PreVoteReply
    | RequestVote
    | VoteReply
    | Heartbeat
    | HeartbeatReply
    | NewEpoch
    | Write
    | StorePing
    | FetchEntries
    | EpochReady
    | WriteAck
    | WriteReject
    | StoreStatus
    | FetchReply
    | EpochSync
    | EpochSyncReply
    | Replicate
    | ReplicateReply
    | Commit
    | CatchUp
    | CatchUpReply
    | ClientRequest
    | ClientReply
    | StatusRequest
    | StatusReply
)

_LENGTH = struct.Struct(">I")
_HEADER = struct.Struct(">IB")

_PREVIEW = reprlib.Repr()
_PREVIEW.maxstring = 60
_PREVIEW.maxother = 60
_PREVIEW.maxlong = 60
_PREVIEW.maxlist = 6
_PREVIEW.maxdict = 4
_PREVIEW.maxlevel = 2
_PREVIEW_CHARS = 80


def _preview(value: object) -> str:
    """Return a short repr of `value` for error messages (at most about 80 characters)."""
    text = _PREVIEW.repr(value)
    if len(text) > _PREVIEW_CHARS:
        text = text[: _PREVIEW_CHARS - 3] + "..."
    return text


# --- Errors ---------------------------------------------------------------------


class ProtocolError(Exception):
    """The peer sent bytes that break the wire protocol, so the caller closes that connection."""


class FrameTooLarge(ProtocolError):
    """The length prefix exceeds `MAX_FRAME_BYTES`."""

    def __init__(self, length: int) -> None:
        super().__init__(
            f"frame length {length} bytes exceeds the limit of {MAX_FRAME_BYTES} bytes"
        )
        self.length = length


class UnsupportedVersion(ProtocolError):
    """The version byte is not `WIRE_VERSION`."""

    def __init__(self, version: int) -> None:
        super().__init__(f"unsupported wire version {version}, expected {WIRE_VERSION}")
        self.version = version


class MalformedFrame(ProtocolError):
    """The frame is empty or truncated, or its payload is not UTF-8 JSON."""


class UnknownMessageType(ProtocolError):
    """The "type" member names no message of `MESSAGE_TYPES`."""

    def __init__(self, type_name: object) -> None:
        super().__init__(f"unknown message type {_preview(type_name)}")
        self.type_name = type_name


# Marker for the value of a missing field in InvalidField.
NO_VALUE: Any = object()


class InvalidField(ProtocolError):
    """A field of a known message is missing, unexpected or has an invalid value."""

    def __init__(
        self, message_type: str, field: str, reason: str, value: object = NO_VALUE
    ) -> None:
        text = f"invalid field {message_type}.{field}: {reason}"
        if value is not NO_VALUE:
            text += f", got {_preview(value)}"
        super().__init__(text)
        self.message_type = message_type
        self.field = field
        self.value = value


class _BadValue(Exception):
    """Raised by a field decoder. The caller adds the message type and field name."""

    def __init__(self, reason: str, value: object, path: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.value = value
        self.path = path  # where inside the field, such as "[3].seq"


# --- Field decoders, built once from the annotations -----------------------------

Decoder = Callable[[object], object]
Encoder = Callable[[Any], object]


def _decode_int(value: object) -> int:
    if type(value) is not int:
        raise _BadValue(f"expected an integer, not {_json_kind(value)}", value)
    if not 0 <= value <= MAX_WIRE_INT:
        raise _BadValue(f"expected an integer from 0 to {MAX_WIRE_INT}", value)
    return value


def _decode_bool(value: object) -> bool:
    if type(value) is not bool:
        raise _BadValue(f"expected true or false, not {_json_kind(value)}", value)
    return value


def _decode_str(value: object) -> str:
    if type(value) is not str:
        raise _BadValue(f"expected a string, not {_json_kind(value)}", value)
    _check_text(value)
    return value


def _check_text(value: str) -> None:
    """Check that `value` is valid Unicode of at most MAX_TEXT_BYTES UTF-8 bytes."""
    if value.isascii():
        size = len(value)
    else:
        try:
            size = len(value.encode("utf-8"))
        except UnicodeEncodeError:
            raise _BadValue("string contains a lone surrogate (\\ud800-\\udfff)", value) from None
    if size > messages.MAX_TEXT_BYTES:
        raise _BadValue(
            f"string of {size} UTF-8 bytes exceeds the limit of {messages.MAX_TEXT_BYTES}", value
        )


_JSON_KINDS = {
    bool: "a boolean",
    int: "an integer",
    float: "a number with a fraction or exponent",
    str: "a string",
    list: "an array",
    dict: "an object",
    type(None): "null",
}


def _json_kind(value: object) -> str:
    """Name the JSON type of a decoded value, for error messages."""
    return _JSON_KINDS.get(type(value), type(value).__name__)


def _enum_decoder(enum_type: type[enum.Enum]) -> Decoder:
    members = {member.value: member for member in enum_type}
    allowed = ", ".join(repr(value) for value in members)

    def decode_enum(value: object) -> object:
        if type(value) is str and value in members:
            return members[value]
        raise _BadValue(f"expected one of {allowed}", value)

    return decode_enum


def _array_decoder(item_decoder: Decoder) -> Decoder:
    def decode_array(value: object) -> tuple[object, ...]:
        if type(value) is not list:
            raise _BadValue(f"expected an array, not {_json_kind(value)}", value)
        items = []
        for index, item in enumerate(value):
            try:
                items.append(item_decoder(item))
            except _BadValue as exc:
                raise _BadValue(exc.reason, exc.value, f"[{index}]{exc.path}") from None
        return tuple(items)

    return decode_array


def _object_decoder(cls: type) -> Decoder:
    """Decode a nested dataclass encoded as a JSON object with exactly its fields."""
    fields = _field_decoders(cls)
    names = frozenset(name for name, _ in fields)

    def decode_object(value: object) -> object:
        if type(value) is not dict:
            raise _BadValue(f"expected an object, not {_json_kind(value)}", value)
        if value.keys() != names:
            missing = sorted(names - value.keys())
            if missing:
                raise _BadValue("missing field", NO_VALUE, f".{missing[0]}")
            extra = sorted(value.keys() - names)
            raise _BadValue("unexpected field", value[extra[0]], f".{extra[0]}")
        arguments = []
        for name, decode in fields:
            try:
                arguments.append(decode(value[name]))
            except _BadValue as exc:
                raise _BadValue(exc.reason, exc.value, f".{name}{exc.path}") from None
        return cls(*arguments)

    return decode_object


def _row_decoder(cls: type) -> Decoder:
    """Decode a tuple of dataclasses encoded as arrays of field values.

    This is the hot path (a Write or Replicate carries up to 256 entries), so
    the integer and string columns are checked inline instead of through one
    decoder call per value.
    """
    hints = typing.get_type_hints(cls)
    names = [field.name for field in dataclasses.fields(cls)]
    int_columns = tuple(i for i, name in enumerate(names) if hints[name] is int)
    str_columns = tuple(i for i, name in enumerate(names) if hints[name] is str)
    if len(int_columns) + len(str_columns) != len(names):
        raise TypeError(f"{cls.__name__}: array rows support only int and str fields")
    width = len(names)
    layout = ", ".join(names)

    def decode_rows(value: object) -> tuple[object, ...]:
        if type(value) is not list:
            raise _BadValue(f"expected an array, not {_json_kind(value)}", value)
        rows = []
        for index, row in enumerate(value):
            if type(row) is not list or len(row) != width:
                reason = f"expected an array of {width} values [{layout}]"
                raise _BadValue(reason, row, f"[{index}]")
            for column in int_columns:
                number = row[column]
                if type(number) is not int or not 0 <= number <= MAX_WIRE_INT:
                    _reject_column(row, index, column, names[column], _decode_int)
            for column in str_columns:
                text = row[column]
                if type(text) is str and text.isascii() and len(text) <= messages.MAX_TEXT_BYTES:
                    continue
                try:
                    _decode_str(text)  # non-ASCII text is valid when it passes this full check
                except _BadValue as exc:
                    raise _BadValue(exc.reason, text, f"[{index}].{names[column]}") from None
            rows.append(cls(*row))
        return tuple(rows)

    return decode_rows


def _reject_column(row: list[Any], index: int, column: int, name: str, decode: Decoder) -> NoReturn:
    try:
        decode(row[column])
    except _BadValue as exc:
        raise _BadValue(exc.reason, row[column], f"[{index}].{name}") from None
    raise AssertionError("the inline check and the column decoder disagree")


# --- Fast decoders for the common case ----------------------------------------------
#
# A fast decoder builds the message when every value is an integer in range,
# an ASCII string within the limit, a boolean, an enum value or a well-formed
# row, and returns None otherwise. The caller then runs the full decoders
# above, which accept the same values and name the first invalid one. Rows are
# checked a column at a time with calls that loop in C.

FastDecoder = Callable[[Any], Any]

_INT_TYPE = frozenset({int})
_STR_TYPE = frozenset({str})
_LIST_TYPE = frozenset({list})


def _plain_ints(values: tuple[Any, ...] | list[Any]) -> bool:
    """Return True when `values` are all integers (not booleans) from 0 to MAX_WIRE_INT."""
    if not values:
        return True
    return set(map(type, values)) == _INT_TYPE and min(values) >= 0 and max(values) <= MAX_WIRE_INT


def _plain_texts(values: tuple[Any, ...] | list[Any]) -> bool:
    """Return True when `values` are all ASCII strings of at most MAX_TEXT_BYTES."""
    if not values:
        return True
    return (
        set(map(type, values)) == _STR_TYPE
        and all(map(str.isascii, values))
        and max(map(len, values)) <= messages.MAX_TEXT_BYTES
    )


def _fast_row_decoder(cls: type) -> FastDecoder:
    names = [field.name for field in dataclasses.fields(cls)]
    hints = typing.get_type_hints(cls)
    int_columns = tuple(i for i, name in enumerate(names) if hints[name] is int)
    str_columns = tuple(i for i, name in enumerate(names) if hints[name] is str)
    width = len(names)

    def decode_rows(value: Any) -> tuple[object, ...] | None:
        if type(value) is not list:
            return None
        if not value:
            return ()
        if set(map(type, value)) != _LIST_TYPE or set(map(len, value)) != {width}:
            return None
        columns = list(zip(*value, strict=True))
        if not all(_plain_ints(columns[i]) for i in int_columns):
            return None
        if not all(_plain_texts(columns[i]) for i in str_columns):
            return None
        return build(value, columns)

    build = _row_builder(cls, names)
    return decode_rows


def _slot_setters(cls: type, names: list[str]) -> list[Callable[[Any, Any], None]] | None:
    """Return the setter of each slot named in `names`, or None unless `cls` may be built slot by slot.

    That is the case for a slotted dataclass without `__post_init__` whose fields
    are all `__init__` parameters, because its generated `__init__` only sets
    each slot with object.__setattr__.
    """
    slots = [cls.__dict__.get(name) for name in names]
    plain = (
        "__slots__" in cls.__dict__
        and not hasattr(cls, "__post_init__")
        and all(field.init for field in dataclasses.fields(cls))
        and all(type(slot) is types.MemberDescriptorType for slot in slots)
    )
    if not plain:
        return None
    return [cast(types.MemberDescriptorType, slot).__set__ for slot in slots]


def _row_builder(cls: type, names: list[str]) -> Callable[[list[list[Any]], list[tuple[Any, ...]]], tuple[Any, ...]]:
    """Return a function that makes one `cls` instance per row, given the rows and their columns.

    For a slotted dataclass without `__post_init__`, the function sets each
    slot a column at a time, as the generated `__init__` would one instance at
    a time, which takes about half the time for a batch of entries. The class
    keeps its own `__setattr__`, so a frozen instance stays frozen.
    """
    setters = _slot_setters(cls, names)
    if setters is None:
        return lambda rows, _columns: tuple(itertools.starmap(cls, rows))
    new = object.__new__

    def build(rows: list[list[Any]], columns: list[tuple[Any, ...]]) -> tuple[Any, ...]:
        instances: list[Any] = [new(cls) for _ in rows]
        for set_slot, column in zip(setters, columns, strict=True):
            collections.deque(map(set_slot, instances, column), maxlen=0)
        return tuple(instances)

    return build


def _fast_decoder(cls: type) -> FastDecoder | None:
    """Return the fast decoder of message class `cls`, or None when a field type has none.

    The decoder takes a document whose keys are exactly the field names. It is
    compiled from generated source, as `dataclasses` compiles `__init__`,
    because an inline condition costs much less than a decoder call per field,
    and a ClientRequest is decoded for every client message.
    """
    hints = typing.get_type_hints(cls)
    names = [field.name for field in dataclasses.fields(cls)]
    namespace: dict[str, Any] = {"cls": cls, "MAX_INT": MAX_WIRE_INT, "MAX_TEXT": messages.MAX_TEXT_BYTES}
    lines = ["def decode(document):"]
    checks = []
    for position, name in enumerate(names):
        hint = hints[name]
        value = f"value{position}"
        lines.append(f"    {value} = document[{name!r}]")
        if hint is int:
            checks.append(f"type({value}) is int and 0 <= {value} <= MAX_INT")
        elif hint is str:
            checks.append(f"type({value}) is str and {value}.isascii() and len({value}) <= MAX_TEXT")
        elif hint is bool:
            checks.append(f"type({value}) is bool")
        elif isinstance(hint, type) and issubclass(hint, enum.Enum):
            namespace[f"members{position}"] = {member.value: member for member in hint}
            lines.append(f"    {value} = members{position}.get({value}) if type({value}) is str else None")
            checks.append(f"{value} is not None")
        elif typing.get_origin(hint) is tuple and dataclasses.is_dataclass(_tuple_item(hint)):
            namespace[f"rows{position}"] = _fast_row_decoder(_tuple_item(hint))
            lines.append(f"    {value} = rows{position}({value})")
            checks.append(f"{value} is not None")
        else:
            return None
    condition = " and ".join(checks) or "True"
    lines.append(f"    if not ({condition}):")
    lines.append("        return None")
    setters = _slot_setters(cls, names)
    if setters is None:
        arguments = ", ".join(f"value{position}" for position in range(len(names)))
        lines.append(f"    return cls({arguments})")
    else:
        # Setting the slots directly takes about half the time of the generated `__init__`.
        namespace["new"] = object.__new__
        lines.append("    message = new(cls)")
        for position, set_slot in enumerate(setters):
            namespace[f"set{position}"] = set_slot
            lines.append(f"    set{position}(message, value{position})")
        lines.append("    return message")
    exec("\n".join(lines), namespace)  # the source contains only the field names and the names above
    return cast(FastDecoder, namespace["decode"])


def _optional_item(hint: Any) -> Any:
    """Return X for the annotation `X | None`, or None for any other annotation."""
    arguments = typing.get_args(hint)
    if typing.get_origin(hint) in (types.UnionType, typing.Union) and len(arguments) == 2:
        if arguments[1] is type(None):
            return arguments[0]
        if arguments[0] is type(None):
            return arguments[1]
    return None


def _nullable_decoder(item_decoder: Decoder) -> Decoder:
    def decode_nullable(value: object) -> object:
        return None if value is None else item_decoder(value)

    return decode_nullable


def _decoder_for(hint: Any) -> Decoder:
    optional = _optional_item(hint)
    if optional is not None:
        return _nullable_decoder(_decoder_for(optional))
    if hint is bool:
        return _decode_bool
    if hint is int:
        return _decode_int
    if hint is str:
        return _decode_str
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return _enum_decoder(hint)
    if dataclasses.is_dataclass(hint) and isinstance(hint, type):
        return _object_decoder(hint)
    item = _tuple_item(hint)
    if dataclasses.is_dataclass(item) and isinstance(item, type):
        return _row_decoder(item)
    return _array_decoder(_decoder_for(item))


def _encoder_for(hint: Any) -> Encoder | None:
    """Return the conversion to JSON values, or None when `json` can encode the value as is."""
    optional = _optional_item(hint)
    if optional is not None:
        convert = _encoder_for(optional)
        if convert is None:
            return None

        def encode_nullable(value: Any) -> object:
            return None if value is None else convert(value)

        return encode_nullable
    if hint in (bool, int, str):
        return None
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return operator.attrgetter("value")
    if dataclasses.is_dataclass(hint) and isinstance(hint, type):
        fields = _field_encoders(hint)

        def encode_object(value: Any) -> dict[str, object]:
            return {name: _convert(getattr(value, name), convert) for name, convert in fields}

        return encode_object
    item = _tuple_item(hint)
    if dataclasses.is_dataclass(item) and isinstance(item, type):
        row = operator.attrgetter(*(field.name for field in dataclasses.fields(item)))

        def encode_rows(value: Any) -> list[object]:
            return list(map(row, value))

        return encode_rows
    if _encoder_for(item) is not None:
        raise TypeError(f"no wire format for {hint!r}")
    return None  # a tuple of plain values, which json writes as an array


def _convert(value: object, convert: Encoder | None) -> object:
    return value if convert is None else convert(value)


def _tuple_item(hint: Any) -> Any:
    """Return X for the annotation tuple[X, ...], and raise TypeError for any other annotation."""
    arguments = typing.get_args(hint)
    if typing.get_origin(hint) is not tuple or len(arguments) != 2 or arguments[1] is not ...:
        raise TypeError(f"no wire format for {hint!r}")
    return arguments[0]


def _field_decoders(cls: type) -> list[tuple[str, Decoder]]:
    hints = typing.get_type_hints(cls)
    return [(field.name, _decoder_for(hints[field.name])) for field in dataclasses.fields(cls)]


def _field_encoders(cls: type) -> list[tuple[str, Encoder | None]]:
    hints = typing.get_type_hints(cls)
    return [(field.name, _encoder_for(hints[field.name])) for field in dataclasses.fields(cls)]


@dataclasses.dataclass(frozen=True, slots=True)
class _MessageTable:
    name: str
    cls: type
    names: frozenset[str]
    decoders: tuple[tuple[str, Decoder], ...]
    encoders: tuple[tuple[str, Encoder | None], ...]
    decode_fast: FastDecoder | None
    # The JSON text of the message, "type" member included, written by orjson.
    dump: Callable[[Any], bytes]


def _native_fields(cls: type) -> bool:
    """Return True when orjson writes a `cls` instance as the wire object, "type" member aside.

    orjson writes a dataclass as an object of its fields in declaration order,
    an enum as its value and a tuple as an array. That is the wire format of
    every field except entries and client marks, which are sent as rows.
    """
    hints = typing.get_type_hints(cls)
    for field in dataclasses.fields(cls):
        hint = _optional_item(hints[field.name]) or hints[field.name]
        if hint in (bool, int, str) or (isinstance(hint, type) and issubclass(hint, enum.Enum)):
            continue
        if typing.get_origin(hint) is tuple and _tuple_item(hint) in (bool, int, str):
            continue
        return False
    return True


def _dumper(name: str, cls: type, encoders: tuple[tuple[str, Encoder | None], ...]) -> Callable[[Any], bytes]:
    if not encoders:
        empty = orjson.dumps({"type": name})
        return lambda _message: empty
    if _native_fields(cls):
        # orjson writes the fields as `{"a":1,...}`, so the "type" member goes in front of its first one.
        prefix = orjson.dumps({"type": name})[:-1] + b","
        dumps = orjson.dumps

        def dump_fields(message: Any) -> bytes:
            return prefix + memoryview(dumps(message))[1:]

        return dump_fields

    def dump_document(message: Any) -> bytes:
        document: dict[str, object] = {"type": name}
        for field, convert in encoders:
            value = getattr(message, field)
            document[field] = value if convert is None else convert(value)
        return orjson.dumps(document)

    return dump_document


def _build_tables() -> tuple[dict[str, _MessageTable], dict[type, _MessageTable]]:
    by_name: dict[str, _MessageTable] = {}
    for name, cls in messages.MESSAGE_TYPES.items():
        decoders = tuple(_field_decoders(cls))
        encoders = tuple(_field_encoders(cls))
        by_name[name] = _MessageTable(
            name=name,
            cls=cls,
            names=frozenset(field for field, _ in decoders),
            decoders=decoders,
            encoders=encoders,
            decode_fast=_fast_decoder(cls),
            dump=_dumper(name, cls, encoders),
        )
    by_class = {table.cls: table for table in by_name.values()}
    return by_name, by_class


_TABLES_BY_NAME, _TABLES_BY_CLASS = _build_tables()


# --- Encoding --------------------------------------------------------------------

_JSON_ENCODER = json.JSONEncoder(
    ensure_ascii=False, check_circular=False, allow_nan=False, separators=(",", ":")
)


def encode(message: Message) -> bytes:
    """Encode `message` as one frame, length prefix included.

    Raises TypeError for an object that is not a message type, and ValueError
    when the frame would exceed MAX_FRAME_BYTES or a string contains a lone
    surrogate, which UTF-8 cannot encode.
    """
    table = _TABLES_BY_CLASS.get(type(message))
    if table is None:
        raise TypeError(f"cannot encode {type(message).__name__}: not a message type")

    try:
        body = table.dump(message)
    except orjson.JSONEncodeError:
        # orjson rejects lone surrogates and integers outside the 64-bit range.
        # `json` raises ValueError for the first and writes the second, which
        # lets tests send out-of-range integers to a decoder.
        body = _encode_with_json(table, message)

    length = len(body) + 1
    if length > MAX_FRAME_BYTES:
        raise ValueError(
            f"{table.name} frame of {length} bytes exceeds MAX_FRAME_BYTES ({MAX_FRAME_BYTES});"
            " send its entries in smaller batches"
        )
    return _HEADER.pack(length, WIRE_VERSION) + body


def _encode_with_json(table: _MessageTable, message: Message) -> bytes:
    document: dict[str, object] = {"type": table.name}
    for name, convert in table.encoders:
        value = getattr(message, name)
        document[name] = value if convert is None else convert(value)
    return _JSON_ENCODER.encode(document).encode("utf-8")


# --- Decoding --------------------------------------------------------------------


class _DuplicateKey(ValueError):
    pass


def _object_without_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    document = dict(pairs)
    if len(document) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _DuplicateKey(f"duplicate key {_preview(key)}")
            seen.add(key)
    return document


def _reject_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not valid JSON")


_JSON_DECODER = json.JSONDecoder(
    object_pairs_hook=_object_without_duplicates, parse_constant=_reject_constant
)


def check_length(length: int) -> int:
    """Return `length` from a length prefix, or raise FrameTooLarge or MalformedFrame."""
    if length > MAX_FRAME_BYTES:
        raise FrameTooLarge(length)
    if length == 0:
        raise MalformedFrame("empty frame: the length prefix is 0, so the version byte is missing")
    return length


def decode_payload(payload: bytes | bytearray | memoryview) -> Message:
    """Decode the bytes of one frame that follow its length prefix."""
    if not payload:
        raise MalformedFrame("empty frame: the version byte is missing")
    if payload[0] != WIRE_VERSION:
        raise UnsupportedVersion(payload[0])
    if type(payload) is not bytes:
        payload = bytes(payload)

    document = _parse_canonical(payload)
    if document is not None:
        try:
            return _decode_document(document)
        except ProtocolError:
            pass  # parsed again below, so the error is the same as for any other payload
    return _decode_document(_parse_with_json(payload))


def _parse_canonical(payload: bytes) -> dict[str, Any] | None:
    """Parse the JSON object after the version byte with orjson, or return None.

    The result is None unless the payload is exactly the text orjson writes for
    the object it parsed. That text has no whitespace, duplicate keys, NaN,
    integer that orjson reads as a float, or escape that orjson would not
    write, so `json` parses it to an equal object.
    """
    try:
        document = orjson.loads(memoryview(payload)[1:])
    except orjson.JSONDecodeError:
        return None
    if type(document) is not dict:
        return None
    try:
        text = orjson.dumps(document)
    except orjson.JSONEncodeError:  # nested deeper than orjson writes (255 levels)
        return None
    if len(text) != len(payload) - 1 or not payload.endswith(text):
        return None
    return document


def _parse_with_json(payload: bytes) -> dict[str, Any]:
    """Parse the JSON object after the version byte with `json`, or raise MalformedFrame."""
    try:
        text = str(memoryview(payload)[1:], "utf-8")
    except UnicodeDecodeError as exc:
        raise MalformedFrame(f"payload is not valid UTF-8: {exc}") from None
    try:
        document = _JSON_DECODER.decode(text)
    except RecursionError:
        raise MalformedFrame("payload JSON is nested too deeply") from None
    except ValueError as exc:  # json.JSONDecodeError, a duplicate key, NaN, or a too long integer
        raise MalformedFrame(f"payload is not valid JSON: {exc}") from None
    if type(document) is not dict:
        raise MalformedFrame(f"payload is {_json_kind(document)}, expected a JSON object")
    return cast(dict[str, Any], document)


def _decode_document(document: dict[str, Any]) -> Message:
    if "type" not in document:
        raise MalformedFrame('payload object has no "type" member')
    type_name = document.pop("type")
    table = _TABLES_BY_NAME.get(type_name) if type(type_name) is str else None
    if table is None:
        raise UnknownMessageType(type_name)

    if document.keys() != table.names:
        missing = sorted(table.names - document.keys())
        if missing:
            raise InvalidField(table.name, missing[0], "missing field")
        extra = sorted(document.keys() - table.names)
        raise InvalidField(table.name, extra[0], "unexpected field", document[extra[0]])

    if table.decode_fast is not None:
        message = table.decode_fast(document)
        if message is not None:
            return cast(Message, message)
    arguments = []
    for name, decode in table.decoders:
        try:
            arguments.append(decode(document[name]))
        except _BadValue as exc:
            raise InvalidField(table.name, name + exc.path, exc.reason, exc.value) from None
    return cast(Message, table.cls(*arguments))


class FrameDecoder:
    """Split a byte stream into frames and decode them, for tests and the simulator.

    After a ProtocolError the stream position is lost, so the decoder stays
    failed and raises the same error on every later `feed`.
    """

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._error: ProtocolError | None = None

    def feed(self, data: bytes) -> list[Message]:
        """Add `data` and return the messages of every frame it completes.

        A ProtocolError discards the messages decoded earlier in the same call,
        because the caller closes the connection anyway. A length prefix is
        checked as soon as its 4 bytes arrive, before its payload is buffered.
        """
        if self._error is not None:
            raise self._error
        buffer = self._buffer
        buffer += data
        decoded: list[Message] = []
        start = 0
        try:
            while len(buffer) - start >= LENGTH_BYTES:
                (length,) = _LENGTH.unpack_from(buffer, start)
                check_length(length)
                end = start + LENGTH_BYTES + length
                if end > len(buffer):
                    break
                decoded.append(decode_payload(bytes(buffer[start + LENGTH_BYTES : end])))
                start = end
        except ProtocolError as exc:
            self._error = exc
            buffer.clear()
            raise
        del buffer[:start]
        return decoded

    @property
    def buffered(self) -> int:
        """Number of bytes received that do not yet form a whole frame."""
        return len(self._buffer)


async def read_frame(reader: asyncio.StreamReader) -> Message:
    """Read and decode one frame from `reader`.

    Raises EOFError when the peer closed the connection between frames,
    MalformedFrame when it closed in the middle of one, and another
    ProtocolError for a frame that breaks the format. The length prefix is
    checked before any of the payload is read.
    """
    try:
        prefix = await reader.readexactly(LENGTH_BYTES)
    except asyncio.IncompleteReadError as exc:
        if not exc.partial:
            raise EOFError("connection closed by the peer") from None
        raise MalformedFrame(
            f"connection closed after {len(exc.partial)} of {LENGTH_BYTES} length prefix bytes"
        ) from None

    (length,) = _LENGTH.unpack(prefix)
    check_length(length)
    try:
        payload = await reader.readexactly(length)
    except asyncio.IncompleteReadError as exc:
        raise MalformedFrame(
            f"connection closed after {len(exc.partial)} of {length} frame bytes"
        ) from None
    return decode_payload(payload)
