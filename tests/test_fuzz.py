"""Fuzz tests of the frame codec, the peer envelope and every protocol handler.

The codec tests feed random bytes, truncated and oversized frames, unknown
types, wrong field types, huge numbers and invalid UTF-8 to the decoders: each
case decodes or raises a ProtocolError, never anything else. The handler tests
feed well-typed but wild messages to every handler of `cluster.core.dispatch`
and to the client request handler: random terms, epochs and sequence numbers,
node ids outside the cluster, entries with gaps. The nodes come from a
simulated cluster that has committed entries. No handler may raise, and no
committed state may regress.
"""

from __future__ import annotations

import copy
import dataclasses
import enum
import functools
import json
import struct
import typing
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cluster import wire
from cluster.core.dispatch import _STORE_HANDLERS, _SYNC_HANDLERS, dispatch_store, dispatch_sync
from cluster.core.effects import AppendLog, AppendOutput, CommitLog, Effect, PersistState
from cluster.core.messages import (
    MAX_TEXT_BYTES,
    MESSAGE_TYPES,
    ClientMark,
    ClientRequest,
    Entry,
    PreVoteReply,
    StoreConfig,
    StorePing,
)
from cluster.core.store_node import StoreNode
from cluster.core.sync_node import Role, SyncNode
from cluster.net import auth
from cluster.sim.world import World

# Bounded time: every property states its example count and deadline. The whole
# fuzz suite (this module and test_fuzz_ports.py) took about 15 s on a 2-core machine.
FAST = settings(max_examples=150, deadline=timedelta(seconds=2), suppress_health_check=[HealthCheck.too_slow])
HANDLER = settings(max_examples=40, deadline=timedelta(seconds=2), suppress_health_check=[HealthCheck.too_slow])

MAX_INT = wire.MAX_WIRE_INT

# --- Strategies ----------------------------------------------------------------------------

# Small values hit the terms, epochs, ids and log positions of a small cluster;
# the rest reach the edges of the wire range.
WILD_INTS = st.one_of(
    st.integers(0, 12),
    st.integers(0, 40),
    st.sampled_from([MAX_INT, MAX_INT - 1, 2**31, 2**32, 2**53 + 1]),
    st.integers(0, MAX_INT),
)
NODE_IDS = st.one_of(st.integers(0, 6), st.integers(0, MAX_INT))
WIRE_TEXT = st.text(max_size=30)


def entries(min_size: int = 0) -> st.SearchStrategy[tuple[Entry, ...]]:
    """Runs of entries: contiguous from a random start, with gaps, repeats and wild fields."""
    entry = st.builds(Entry, WILD_INTS, WILD_INTS, WILD_INTS, NODE_IDS, WILD_INTS, WIRE_TEXT)

    @st.composite
    def run(draw: st.DrawFn) -> tuple[Entry, ...]:
        start = draw(st.integers(0, 24))
        count = draw(st.integers(min_size, 6))
        term = draw(st.integers(0, 6))
        steps = draw(st.lists(st.sampled_from([1, 1, 1, 0, 2, -1]), min_size=count, max_size=count))
        seqs = []
        seq = start
        for step in steps:
            seq = max(0, seq + step)
            seqs.append(seq)
        return tuple(Entry(s, term, 100 + s, 1 + s % 3, s, f"fuzz {s}") for s in seqs)

    return st.one_of(run(), st.lists(entry, min_size=min_size, max_size=4).map(tuple))


CONFIGS = st.builds(
    StoreConfig,
    epoch=WILD_INTS,
    term=WILD_INTS,
    primary=NODE_IDS,
    backups=st.lists(NODE_IDS, max_size=4).map(tuple),
    joining=st.lists(NODE_IDS, max_size=2).map(tuple),
)


def strategy_for(hint: Any) -> st.SearchStrategy[Any]:
    """Return a strategy of well-typed, wire-valid but semantically wild values for one annotation."""
    if hint is bool:
        return st.booleans()
    if hint is int:
        return WILD_INTS
    if hint is str:
        return WIRE_TEXT
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return st.sampled_from(list(hint))
    if hint is StoreConfig:
        return CONFIGS
    arguments = typing.get_args(hint)
    if type(None) in arguments:
        (item,) = (argument for argument in arguments if argument is not type(None))
        return st.none() | strategy_for(item)
    if arguments == (Entry, ...):
        return entries()
    if arguments == (ClientMark, ...):
        mark = st.builds(ClientMark, NODE_IDS, WILD_INTS, WILD_INTS, WILD_INTS, WILD_INTS)
        return st.lists(mark, max_size=4).map(tuple)
    if dataclasses.is_dataclass(hint) and isinstance(hint, type):
        return message_strategy(hint)
    assert typing.get_origin(hint) is tuple, hint
    return st.lists(strategy_for(arguments[0]), max_size=4).map(tuple)


@functools.cache
def message_strategy(cls: type) -> st.SearchStrategy[Any]:
    hints = typing.get_type_hints(cls)
    return st.builds(cls, **{field.name: strategy_for(hints[field.name]) for field in dataclasses.fields(cls)})


ANY_MESSAGE = st.sampled_from(sorted(MESSAGE_TYPES.values(), key=lambda cls: cls.__name__)).flatmap(
    message_strategy
)


def json_values() -> st.SearchStrategy[Any]:
    scalars = st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-(2**70), 2**70),
        st.floats(allow_nan=False, allow_infinity=False),
        st.text(max_size=10),
    )
    return st.recursive(scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5),
                                                                                             inner, max_size=3),
                        max_leaves=6)


def payload(frame: bytes) -> bytes:
    return frame[wire.LENGTH_BYTES :]


# --- Codec ---------------------------------------------------------------------------------


def decode_or_protocol_error(data: bytes) -> wire.Message | None:
    """Decode one payload; return None when it raised ProtocolError, the only error allowed."""
    try:
        return wire.decode_payload(data)
    except wire.ProtocolError:
        return None


@FAST
@given(st.binary(max_size=200))
def test_random_payload_decodes_or_fails_cleanly(data: bytes) -> None:
    decode_or_protocol_error(data)


@FAST
@given(st.binary(max_size=200))
def test_random_payload_with_version_byte(data: bytes) -> None:
    decode_or_protocol_error(bytes([wire.WIRE_VERSION]) + data)


@FAST
@given(st.lists(st.binary(max_size=60), max_size=6))
def test_stream_decoder_random_chunks(chunks: list[bytes]) -> None:
    """A FrameDecoder fed any bytes in any chunks yields messages or stays failed on a ProtocolError."""
    decoder = wire.FrameDecoder()
    failure: wire.ProtocolError | None = None
    for chunk in chunks:
        try:
            decoder.feed(chunk)
        except wire.ProtocolError as error:
            failure = error
            break
    if failure is not None:
        with pytest.raises(wire.ProtocolError):
            decoder.feed(b"")


@FAST
@given(ANY_MESSAGE, st.data())
def test_truncated_frame_waits_for_more(message: Any, data: st.DataObject) -> None:
    """Every prefix of a valid frame decodes nothing yet and raises nothing."""
    frame = wire.encode(message)
    cut = data.draw(st.integers(0, len(frame) - 1))
    decoder = wire.FrameDecoder()

    decoded = decoder.feed(frame[:cut])
    rest = decoder.feed(frame[cut:])

    assert decoded == []
    assert rest == [message]


@FAST
@given(st.integers(wire.MAX_FRAME_BYTES + 1, 2**32 - 1))
def test_oversized_prefix_rejected(length: int) -> None:
    decoder = wire.FrameDecoder()

    with pytest.raises(wire.FrameTooLarge):
        decoder.feed(struct.pack(">I", length) + b"\x01")


@FAST
@given(st.text(max_size=20).filter(lambda name: name not in MESSAGE_TYPES), json_values())
def test_unknown_type_rejected(name: str, value: Any) -> None:
    body = json.dumps({"type": name, "field": value}).encode()

    with pytest.raises(wire.UnknownMessageType):
        wire.decode_payload(bytes([wire.WIRE_VERSION]) + body)


@FAST
@given(ANY_MESSAGE, st.data(), json_values())
def test_wrong_field_value(message: Any, data: st.DataObject, value: Any) -> None:
    """Replacing one field with any JSON value either still decodes or raises ProtocolError."""
    document = json.loads(payload(wire.encode(message))[1:])
    fields = [name for name in document if name != "type"]
    if not fields:
        return
    document[data.draw(st.sampled_from(fields))] = value

    decode_or_protocol_error(bytes([wire.WIRE_VERSION]) + json.dumps(document).encode())


@FAST
@given(ANY_MESSAGE, st.data(), st.one_of(st.integers(MAX_INT + 1, 2**200), st.integers(-(2**200), -1)))
def test_out_of_range_integer_rejected(message: Any, data: st.DataObject, number: int) -> None:
    """Integers outside 0 to 2**63 - 1 are rejected wherever they appear."""
    document = json.loads(payload(wire.encode(message))[1:])
    ints = [name for name, value in document.items() if type(value) is int]
    if not ints:
        return
    document[data.draw(st.sampled_from(ints))] = number

    with pytest.raises(wire.InvalidField):
        wire.decode_payload(bytes([wire.WIRE_VERSION]) + json.dumps(document).encode())


@FAST
@given(st.binary(min_size=1, max_size=8).filter(lambda raw: not _is_utf8(raw)), st.integers(0, 30))
def test_invalid_utf8_rejected(bad: bytes, position: int) -> None:
    body = json.dumps({"type": "ClientRequest", "client_id": 1, "request_id": 1, "lamport": 1,
                       "text": "x" * 30}).encode()
    position = min(position, len(body))

    with pytest.raises(wire.MalformedFrame):
        wire.decode_payload(bytes([wire.WIRE_VERSION]) + body[:position] + bad + body[position:])


def _is_utf8(raw: bytes) -> bool:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def test_text_over_limit_rejected() -> None:
    body = json.dumps({"type": "ClientRequest", "client_id": 1, "request_id": 1, "lamport": 1,
                       "text": "x" * (MAX_TEXT_BYTES + 1)}).encode()

    with pytest.raises(wire.InvalidField):
        wire.decode_payload(bytes([wire.WIRE_VERSION]) + body)


# --- Peer envelope -----------------------------------------------------------------------------

RING = auth.KeyRing((bytes(range(32)),), "fuzz key")
PEERS = frozenset({("sync", 2), ("store", 1)})


def new_acceptor() -> auth.Acceptor:
    return auth.Acceptor(RING, "sync", 1, PEERS, bytes(16))


@FAST
@given(st.lists(st.binary(max_size=80), min_size=1, max_size=4))
def test_acceptor_random_envelopes(envelopes: list[bytes]) -> None:
    """Any envelopes at any handshake stage end in AuthError, never another exception."""
    acceptor = new_acceptor()
    steps = [acceptor.receive_open, acceptor.receive_hello, acceptor.receive_data, acceptor.receive_data]
    for step, envelope in zip(steps, envelopes, strict=False):
        try:
            step(envelope)
        except auth.AuthError:
            return
    raise AssertionError("random envelopes passed the handshake")


@FAST
@given(st.binary(max_size=120))
def test_connector_random_challenge(envelope: bytes) -> None:
    connector = auth.Connector(RING, "sync", 2, "sync", 1, bytes(16))

    with pytest.raises(auth.AuthError):
        connector.receive_challenge(envelope)


@FAST
@given(st.binary(min_size=1, max_size=120), st.integers(0, 200))
def test_data_frame_bit_flip_rejected(noise: bytes, position: int) -> None:
    """Changing any byte of a sealed frame, after a real handshake, is rejected."""
    acceptor = new_acceptor()
    connector = auth.Connector(RING, "sync", 2, "sync", 1, bytes(range(16)))
    hello = connector.receive_challenge(payload(acceptor.receive_open(payload(connector.open_frame()))))
    acceptor.receive_hello(payload(hello))
    sealed = bytearray(payload(connector.seal(wire.encode(ClientRequest(1, 1, 1, "x")))))
    index = 2 + position % (len(sealed) - 2)
    sealed[index] ^= noise[0] or 1

    with pytest.raises(auth.AuthError):
        acceptor.receive_data(bytes(sealed))


# --- Handlers ----------------------------------------------------------------------------------


@functools.cache
def settled_world() -> World:
    """Run a simulated cluster in order until every client message is acknowledged and committed everywhere."""
    world = World(sync_count=3, store_count=3, client_count=2, messages_per_client=8, seed=11)
    quiet = 0
    for _step in range(200_000):
        if world.pending_output:
            world.complete_output(world.pending_output[0].id)
        elif world.network:
            world.deliver(world.network[0].id)
        else:
            world.tick_all()
        done = world.all_acknowledged() and all(
            store is not None and store.commit == 16 for store in world.store.values()
        )
        quiet = quiet + 1 if done else 0
        if quiet > 200:
            return world
    raise AssertionError("the simulated cluster did not settle")


SYNC_ROLES = ("leader", "follower", "pre-candidate", "candidate")
STORE_ROLES = ("primary", "backup", "outside")


@functools.cache
def sync_node(role: str) -> SyncNode:
    """Return a sync node of the settled world in `role`; the election roles start from a follower."""
    world = settled_world()
    expected_role = Role.LEADER if role == "leader" else Role.FOLLOWER
    node = next(node for node in world.sync.values() if node is not None and node.role is expected_role)
    assert node.term >= 1
    if role == "leader":
        assert node.leader is not None and node.leader.output_seq == 16
        return node

    node = copy.deepcopy(node)
    if role in ("pre-candidate", "candidate"):
        node.election_timeout_expired()
        assert node.role is Role.PRE_CANDIDATE
    if role == "candidate":
        voter = next(peer for peer in node.peers)
        node.handle_pre_vote_reply(PreVoteReply(node.term + 1, voter, True))
        assert node.role is Role.CANDIDATE
    return node


@functools.cache
def store_node(role: str) -> StoreNode:
    """Return a store node of the settled world in `role`.

    An "outside" node is a backup that a StorePing placed outside the configuration.
    """
    world = settled_world()
    node = next(
        node for node in world.store.values()
        if node is not None and (node.primary is not None) == (role == "primary")
    )
    assert node.commit == 16
    if role != "outside":
        return node

    node = copy.deepcopy(node)
    others = tuple(other for other in node.store_ids if other != node.node_id)
    config = StoreConfig(node.epoch + 1, node.leader_term, others[0], others[1:])
    node.handle_store_ping(StorePing(node.leader_term, node.leader_id, config))
    assert node.known_config == config
    return node


def check_sync_state(before: SyncNode, after: SyncNode, effects: list[Effect]) -> None:
    """Term, vote, configuration and output never go back; the output only grows after its end."""
    assert after.term >= before.term
    if after.term == before.term and before.voted_for is not None:
        assert after.voted_for == before.voted_for
    assert after.config.key >= before.config.key
    for effect in effects:
        if isinstance(effect, PersistState):
            assert effect.state["term"] >= before.term
            assert (effect.state["config"]["term"], effect.state["config"]["epoch"]) >= before.config.key
    if before.leader is not None and after.leader is not None:
        assert after.leader.output_seq >= before.leader.output_seq
        assert after.leader.committed >= before.leader.committed
    output_seq = before.leader.output_seq if before.leader is not None else 0
    for effect in effects:
        if isinstance(effect, AppendOutput):
            assert all(entry.seq > output_seq for entry in effect.entries)


def check_store_state(before: StoreNode, after: StoreNode, effects: list[Effect]) -> None:
    """Commit index, epoch and leader term never go back; committed entries never change."""
    assert after.commit >= before.commit
    assert after.log[: before.commit] == before.log[: before.commit]
    assert after.epoch >= before.epoch
    assert after.leader_term >= before.leader_term
    newly_committed: list[Entry] = []
    for effect in effects:
        if isinstance(effect, AppendLog):
            assert effect.keep >= before.commit
        elif isinstance(effect, CommitLog):
            newly_committed.extend(effect.entries)
    assert newly_committed == after.log[before.commit : after.commit]


# Handlers that raise on a wild but well-formed message: a bug in the core,
# reported with the smallest example found, and expected to fail until fixed.
KNOWN_CRASHES: dict[str, str] = {}


def handler_cases(handlers: dict[type, Any], roles: tuple[str, str]) -> list[Any]:
    cases = []
    for cls in sorted(handlers, key=lambda cls: cls.__name__):
        for role in roles:
            marks = []
            reason = KNOWN_CRASHES.get(f"{cls.__name__}/{role}")
            if reason is not None:
                marks.append(pytest.mark.xfail(strict=True, reason=reason))
            cases.append(pytest.param(cls, role, marks=marks, id=f"{cls.__name__}-{role}"))
    return cases


@pytest.mark.parametrize(("cls", "role"), handler_cases(_SYNC_HANDLERS, SYNC_ROLES))
def test_sync_handler_survives_wild_message(cls: type, role: str) -> None:
    base = sync_node(role)

    @HANDLER
    @given(st.lists(message_strategy(cls), min_size=1, max_size=3))
    def run(batch: list[Any]) -> None:
        node = copy.deepcopy(base)
        for message in batch:
            before = copy.deepcopy(node)
            effects = dispatch_sync(node, message) + node.flush()
            check_sync_state(before, node, effects)

    run()


@pytest.mark.parametrize(("cls", "role"), handler_cases(_STORE_HANDLERS, STORE_ROLES))
def test_store_handler_survives_wild_message(cls: type, role: str) -> None:
    base = store_node(role)

    @HANDLER
    @given(st.lists(message_strategy(cls), min_size=1, max_size=3))
    def run(batch: list[Any]) -> None:
        node = copy.deepcopy(base)
        for message in batch:
            before = copy.deepcopy(node)
            effects = dispatch_store(node, message)
            check_store_state(before, node, effects)

    run()


@pytest.mark.parametrize("role", SYNC_ROLES)
def test_client_request_handler_survives_wild_request(role: str) -> None:
    """The client port is unauthenticated, so any well-formed ClientRequest must be handled."""
    base = sync_node(role)

    @HANDLER
    @given(st.lists(st.tuples(st.integers(1, 5), message_strategy(ClientRequest)), min_size=1, max_size=5))
    def run(batch: list[tuple[int, ClientRequest]]) -> None:
        node = copy.deepcopy(base)
        for conn, request in batch:
            before = copy.deepcopy(node)
            effects = node.handle_client_request(conn, request) + node.flush()
            check_sync_state(before, node, effects)

    run()


def test_every_dispatched_type_is_fuzzed() -> None:
    """The handler tests cover each entry of the dispatch tables, and nothing else reaches a handler."""
    assert set(_SYNC_HANDLERS) | set(_STORE_HANDLERS) <= set(MESSAGE_TYPES.values())
    assert len(handler_cases(_SYNC_HANDLERS, SYNC_ROLES)) == len(SYNC_ROLES) * len(_SYNC_HANDLERS)
    assert len(handler_cases(_STORE_HANDLERS, STORE_ROLES)) == len(STORE_ROLES) * len(_STORE_HANDLERS)
