"""Tests for peer authentication: tags, the handshake, key rings and their settings."""

from __future__ import annotations

import argparse
import secrets
import stat
from pathlib import Path

import pytest

from cluster import cli
from cluster.core.messages import Heartbeat, PreVoteReply, initial_config
from cluster.net import auth
from cluster.net.auth import (
    Acceptor,
    AuthError,
    Connector,
    KeyConfigError,
    KeyRing,
    RejectionCounter,
    RejectReason,
)
from cluster.node.settings import KEY_FILE_NAME, SettingsError, resolve_key_ring
from cluster.wire import LENGTH_BYTES, decode_payload, encode

KEY_A = bytes(range(32))
KEY_B = bytes(range(100, 140))
RING_A = KeyRing((KEY_A,), "test key A")
PEERS = frozenset({("sync", 2), ("sync", 3), ("store", 1)})
HARMLESS = encode(PreVoteReply(0, 2, False))


def envelope(frame: bytes) -> bytes:
    """Return a frame without its length prefix, as the readers pass it on."""
    return frame[LENGTH_BYTES:]


def connect(
    acceptor_ring: KeyRing = RING_A, connector_ring: KeyRing = RING_A, role: str = "sync", node: int = 2,
    to_role: str = "sync", to_node: int = 1,
) -> tuple[Acceptor, Connector]:
    """Run a whole handshake between a fresh acceptor (sync 1) and connector."""
    acceptor = Acceptor(acceptor_ring, "sync", 1, PEERS, secrets.token_bytes(auth.NONCE_BYTES))
    connector = Connector(connector_ring, role, node, to_role, to_node, secrets.token_bytes(auth.NONCE_BYTES))
    challenge = acceptor.receive_open(envelope(connector.open_frame()))
    hello = connector.receive_challenge(envelope(challenge))
    acceptor.receive_hello(envelope(hello))
    return acceptor, connector


def rejection(action: object) -> RejectReason:
    assert callable(action)
    with pytest.raises(AuthError) as caught:
        action()
    return caught.value.reason


# --- Handshake and frames ----------------------------------------------------------------


def test_handshake_then_frames_round_trip() -> None:
    acceptor, connector = connect()

    payloads = [acceptor.receive_data(envelope(connector.seal(HARMLESS))) for _ in range(3)]

    assert acceptor.hello == auth.Hello("sync", 2, "sync", 1)
    assert [decode_payload(payload) for payload in payloads] == [decode_payload(envelope(HARMLESS))] * 3
    assert acceptor.last_sequence == 3


def test_seal_matches_frame_tag() -> None:
    """The incremental HMAC of `seal` equals the plain `frame_tag` function."""
    acceptor, connector = connect()

    sealed = envelope(connector.seal(HARMLESS))

    sequence = int.from_bytes(sealed[2:10], "big")
    tag = sealed[10:42]
    assert sequence == 1
    assert tag == auth.frame_tag(KEY_A, acceptor.challenge, 1, envelope(HARMLESS))


def test_python_hmac_same_tags(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without OpenSSL's HMAC object the hmac module tags frames, and both ends still agree."""
    acceptor, openssl_connector = connect()
    monkeypatch.setattr(auth, "_openssl_hmac_new", None)
    python_acceptor, python_connector = connect()

    sealed = envelope(python_connector.seal(HARMLESS))

    assert sealed[10:42] == auth.frame_tag(KEY_A, python_acceptor.challenge, 1, envelope(HARMLESS))
    assert python_acceptor.receive_data(sealed) == envelope(HARMLESS)
    assert acceptor.receive_data(envelope(openssl_connector.seal(HARMLESS))) == envelope(HARMLESS)


OPEN_CONNECTION_REJECTS = [
    ("empty", b"", RejectReason.MALFORMED, "empty frame"),
    ("no_kind", b"\x02", RejectReason.MALFORMED, "ends before its kind byte"),
    ("untagged", envelope(HARMLESS), RejectReason.MISSING_TAG, "untagged message frame"),
    ("other_version", b"\x07\x04" + bytes(60), RejectReason.MALFORMED, "unsupported peer frame version 7"),
    ("unknown_kind", b"\x02\x09" + bytes(60), RejectReason.MALFORMED, "unknown peer frame kind 9"),
    ("hello_again", b"\x02\x03" + bytes(60), RejectReason.BAD_HELLO, "hello repeated"),
    ("open_again", b"\x02\x01" + bytes(16), RejectReason.MALFORMED, "OPEN frame on an open connection"),
    ("truncated_data", b"\x02\x04" + bytes(39), RejectReason.MALFORMED, "DATA frame of 41 bytes is truncated"),
]


@pytest.mark.parametrize(
    ("data", "reason", "message"),
    [case[1:] for case in OPEN_CONNECTION_REJECTS],
    ids=[case[0] for case in OPEN_CONNECTION_REJECTS],
)
def test_open_connection_rejects(data: bytes, reason: RejectReason, message: str) -> None:
    acceptor, _connector = connect()

    with pytest.raises(AuthError) as caught:
        acceptor.receive_data(data)

    assert caught.value.reason is reason
    assert message in str(caught.value)


def test_untagged_frame_rejected() -> None:
    acceptor, _connector = connect()

    assert rejection(lambda: acceptor.receive_data(envelope(HARMLESS))) is RejectReason.MISSING_TAG


def test_untagged_frame_before_hello_rejected() -> None:
    acceptor = Acceptor(RING_A, "sync", 1, PEERS, secrets.token_bytes(16))

    assert rejection(lambda: acceptor.receive_open(envelope(HARMLESS))) is RejectReason.MISSING_TAG


@pytest.mark.parametrize("index", [0, 5, 41, -1])
def test_flipped_byte_rejected(index: int) -> None:
    """Changing any byte of sequence, tag or payload fails the tag check."""
    acceptor, connector = connect()
    sealed = bytearray(envelope(connector.seal(HARMLESS)))
    sealed[2 + index if index >= 0 else index] ^= 0x01

    assert rejection(lambda: acceptor.receive_data(bytes(sealed))) is RejectReason.WRONG_TAG


def test_replay_within_connection_rejected() -> None:
    acceptor, connector = connect()
    sealed = envelope(connector.seal(HARMLESS))
    acceptor.receive_data(sealed)

    assert rejection(lambda: acceptor.receive_data(sealed)) is RejectReason.REPLAYED_FRAME


def test_skipped_sequence_rejected() -> None:
    acceptor, connector = connect()
    connector.seal(HARMLESS)

    second = envelope(connector.seal(HARMLESS))

    assert rejection(lambda: acceptor.receive_data(second)) is RejectReason.WRONG_SEQUENCE


def test_frame_replayed_on_other_connection_rejected() -> None:
    """A frame is bound to the challenge of its connection, so another connection rejects it."""
    _first_acceptor, first_connector = connect()
    captured = envelope(first_connector.seal(HARMLESS))
    second_acceptor, _second_connector = connect()

    assert rejection(lambda: second_acceptor.receive_data(captured)) is RejectReason.WRONG_TAG


def test_hello_replayed_on_other_connection_rejected() -> None:
    first = Acceptor(RING_A, "sync", 1, PEERS, secrets.token_bytes(16))
    connector = Connector(RING_A, "sync", 2, "sync", 1, secrets.token_bytes(16))
    opening = envelope(connector.open_frame())
    hello = envelope(connector.receive_challenge(envelope(first.receive_open(opening))))
    second = Acceptor(RING_A, "sync", 1, PEERS, secrets.token_bytes(16))
    second.receive_open(opening)

    assert rejection(lambda: second.receive_hello(hello)) is RejectReason.WRONG_TAG


def test_data_before_hello_rejected() -> None:
    acceptor = Acceptor(RING_A, "sync", 1, PEERS, secrets.token_bytes(16))
    _other_acceptor, connector = connect()

    assert rejection(lambda: acceptor.receive_data(envelope(connector.seal(HARMLESS)))) is RejectReason.BAD_HELLO


@pytest.mark.parametrize(
    ("role", "node", "to_role", "to_node", "reason"),
    [
        ("sync", 9, "sync", 1, RejectReason.UNKNOWN_NODE),
        ("client", 1, "sync", 1, RejectReason.UNKNOWN_NODE),
        ("sync", 1, "sync", 1, RejectReason.UNKNOWN_NODE),
        ("sync", 2, "sync", 3, RejectReason.BAD_HELLO),
        ("sync", 2, "store", 1, RejectReason.BAD_HELLO),
    ],
)
def test_hello_identity_checked(role: str, node: int, to_role: str, to_node: int, reason: RejectReason) -> None:
    """A hello must come from a peer of the cluster and be meant for this node."""
    assert rejection(lambda: connect(role=role, node=node, to_role=to_role, to_node=to_node)) is reason


def test_acceptor_key_not_in_connector_ring() -> None:
    """The connector checks the challenge, so it never sends to a node with another key."""
    other = KeyRing((KEY_B,), "test key B")

    assert rejection(lambda: connect(acceptor_ring=other)) is RejectReason.UNKNOWN_KEY


def test_connector_key_not_in_acceptor_ring() -> None:
    """A connector that signs with a key the acceptor lacks fails at the hello."""
    signs_with_b = KeyRing((KEY_B, KEY_A), "test keys B, A")

    assert rejection(lambda: connect(acceptor_ring=RING_A, connector_ring=signs_with_b)) is RejectReason.UNKNOWN_KEY


def test_rotation_skipping_a_step_fails() -> None:
    """A node that only has the new key cannot reach one that still signs with the old key."""
    old_first = KeyRing((KEY_A, KEY_B), "test keys A, B")
    only_new = KeyRing((KEY_B,), "test key B")

    assert rejection(lambda: connect(acceptor_ring=old_first, connector_ring=only_new)) is RejectReason.UNKNOWN_KEY


@pytest.mark.parametrize(
    ("acceptor_keys", "connector_keys"),
    [
        ((KEY_A,), (KEY_A, KEY_B)),  # rotation step 1 next to a node not yet updated
        ((KEY_A, KEY_B), (KEY_B, KEY_A)),  # step 1 next to step 2
        ((KEY_B, KEY_A), (KEY_B,)),  # step 2 next to step 3
        ((KEY_B,), (KEY_B, KEY_A)),
    ],
)
def test_rotation_neighbours_connect(acceptor_keys: tuple[bytes, ...], connector_keys: tuple[bytes, ...]) -> None:
    """Nodes one rotation step apart authenticate each other in both directions."""
    first = KeyRing(acceptor_keys, "first")
    second = KeyRing(connector_keys, "second")

    forward, sender = connect(acceptor_ring=first, connector_ring=second)
    backward, _sender = connect(acceptor_ring=second, connector_ring=first)

    assert forward.established
    assert backward.established
    assert forward.receive_data(envelope(sender.seal(HARMLESS))) == envelope(HARMLESS)


def test_truncated_and_unknown_frames_malformed() -> None:
    acceptor = Acceptor(RING_A, "sync", 1, PEERS, secrets.token_bytes(16))

    assert rejection(lambda: acceptor.receive_open(b"")) is RejectReason.MALFORMED
    assert rejection(lambda: acceptor.receive_open(b"\x02")) is RejectReason.MALFORMED
    assert rejection(lambda: acceptor.receive_open(b"\x02\x01short")) is RejectReason.MALFORMED
    assert rejection(lambda: acceptor.receive_open(b"\x02\x09" + bytes(16))) is RejectReason.MALFORMED
    assert rejection(lambda: acceptor.receive_open(b"\x07\x01" + bytes(16))) is RejectReason.MALFORMED


@pytest.mark.parametrize(
    "body",
    [b"not json", b"[]", b'{"role":"sync","node":2}', b'{"role":"sync","node":"2","to_role":"sync","to_node":1}',
     b"\xff\xfe"],
)
def test_invalid_hello_body_rejected(body: bytes) -> None:
    """A hello with a valid tag but an invalid body is still rejected."""
    acceptor = Acceptor(RING_A, "sync", 1, PEERS, secrets.token_bytes(16))
    nonce = secrets.token_bytes(16)
    acceptor.receive_open(envelope(auth.open_frame(nonce)))

    frame = auth.hello_frame(KEY_A, acceptor.challenge, nonce, body)

    assert rejection(lambda: acceptor.receive_hello(envelope(frame))) is RejectReason.BAD_HELLO


# --- Key rings ---------------------------------------------------------------------------


def test_key_ring_repr_hides_keys() -> None:
    ring = KeyRing((KEY_A, KEY_B), "somewhere")

    text = repr(ring) + str(ring)

    assert KEY_A.hex() not in text
    assert KEY_B.hex() not in text
    assert auth.key_id(KEY_A).hex() in text


def test_parse_keys_file_format() -> None:
    text = f"# rotation in progress\n{KEY_B.hex()}\n\n{KEY_A.hex().upper()}\r\n{KEY_B.hex()}\n"

    ring = auth.parse_keys(text, "test file")

    assert ring.keys == (KEY_B, KEY_A)
    assert ring.send_key == KEY_B


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("00" * 31, "line 1 is a key of 31 bytes; at least 32 bytes"),
        ("zz" * 32, "line 1 is not a hex key"),
        ("abc", "line 1 is not a hex key"),
        (f"{KEY_A.hex()}\n{'11' * 8}", "line 2 is a key of 8 bytes"),
        ("# only a comment\n", "holds no key"),
    ],
)
def test_parse_keys_errors(text: str, expected: str) -> None:
    with pytest.raises(KeyConfigError) as caught:
        auth.parse_keys(text, "test file")

    assert expected in str(caught.value)
    assert "secrets.token_hex(32)" in str(caught.value)


def test_key_errors_never_echo_the_value() -> None:
    secret_like = "ab" * 31 + "zz"

    with pytest.raises(KeyConfigError) as caught:
        auth.parse_keys(secret_like, "CLUSTER_KEY", separator=",")

    assert secret_like not in str(caught.value)
    assert "ab" * 10 not in str(caught.value)


def test_write_key_file_mode_and_no_replace(tmp_path: Path) -> None:
    path = tmp_path / "cluster.key"

    created = auth.write_key_file(path, KEY_A, replace=False)
    again = auth.write_key_file(path, KEY_B, replace=False)

    assert created
    assert not again
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert auth.load_key_file(path, "test").keys == (KEY_A,)
    assert [entry.name for entry in tmp_path.iterdir()] == ["cluster.key"]


# --- Settings ----------------------------------------------------------------------------


def test_resolve_from_key_file(tmp_path: Path) -> None:
    path = tmp_path / "ring"
    path.write_text(f"{KEY_A.hex()}\n{KEY_B.hex()}\n", encoding="ascii")

    ring, warning = resolve_key_ring(None, {"CLUSTER_KEY_FILE": str(path)}, tmp_path / "data")

    assert ring.keys == (KEY_A, KEY_B)
    assert warning is None


def test_resolve_flag_wins_over_environment(tmp_path: Path) -> None:
    path = tmp_path / "ring"
    path.write_text(KEY_B.hex(), encoding="ascii")

    ring, _warning = resolve_key_ring(path, {"CLUSTER_KEY": KEY_A.hex()}, tmp_path)

    assert ring.keys == (KEY_B,)


def test_resolve_from_environment_list(tmp_path: Path) -> None:
    ring, _warning = resolve_key_ring(None, {"CLUSTER_KEY": f"{KEY_B.hex()}, {KEY_A.hex()}"}, tmp_path)

    assert ring.keys == (KEY_B, KEY_A)


def test_resolve_both_variables_rejected(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="both CLUSTER_KEY_FILE and CLUSTER_KEY are set"):
        resolve_key_ring(None, {"CLUSTER_KEY_FILE": "/x", "CLUSTER_KEY": KEY_A.hex()}, tmp_path)


@pytest.mark.parametrize("name", ["CLUSTER_KEY", "CLUSTER_KEY_FILE"])
@pytest.mark.parametrize("value", ["", "  "], ids=["empty", "blank"])
def test_resolve_empty_variable_rejected(tmp_path: Path, name: str, value: str) -> None:
    """An empty key variable is an error, not a silent fallback to a key that only this data directory has."""
    with pytest.raises(SettingsError) as error:
        resolve_key_ring(None, {name: value}, tmp_path)

    assert f"{name} is set but empty" in str(error.value)
    assert f"unset it to use {tmp_path / 'cluster.key'}" in str(error.value)
    assert not (tmp_path / "cluster.key").exists()


def test_environment_list_without_keys_names_commas() -> None:
    with pytest.raises(auth.KeyConfigError) as error:
        auth.parse_keys(" , ", "CLUSTER_KEY", separator=",")

    assert "CLUSTER_KEY holds no key; give hex keys separated by commas" in str(error.value)


def test_resolve_default_creates_shared_file(tmp_path: Path) -> None:
    """Without a setting, nodes of one data directory create and then share DATA_DIR/cluster.key."""
    first, first_warning = resolve_key_ring(None, {}, tmp_path)
    second, second_warning = resolve_key_ring(None, {}, tmp_path)

    assert first.keys == second.keys
    assert first_warning is not None and "(created)" in first_warning
    assert second_warning is not None and "(found)" in second_warning
    assert stat.S_IMODE((tmp_path / KEY_FILE_NAME).stat().st_mode) == 0o600


def node_args(*extra: str) -> list[str]:
    return ["sync", "--id", "1", "--port", "7001", "--cluster-port", "7002", "--sync-nodes",
            "127.0.0.1:7001:7002", "--store-nodes", "127.0.0.1:7003:7004", *extra]


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (None, "--key-file {path} not found; create it with"),
        ("", "--key-file {path} holds no key"),
        ("0123", "--key-file {path} line 1 is a key of 2 bytes; at least 32 bytes (64 hex digits)"),
        ("\xe9t\xe9", "--key-file {path} is not a text file of hex keys"),
    ],
)
def test_cli_key_file_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
    content: str | None, expected: str,
) -> None:
    """`cluster sync --key-file` stops with exit status 2 and an error naming the flag and the fix."""
    path = tmp_path / "key"
    if content is not None:
        path.write_text(content, encoding="latin-1")
    monkeypatch.delenv("CLUSTER_KEY", raising=False)
    monkeypatch.delenv("CLUSTER_KEY_FILE", raising=False)

    status = cli.main(node_args("--key-file", str(path), "--data-dir", str(tmp_path)))

    assert status == cli.EXIT_USAGE
    assert expected.format(path=path) in capsys.readouterr().err


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"CLUSTER_KEY": "00" * 16}, "CLUSTER_KEY entry 1 is a key of 16 bytes"),
        ({"CLUSTER_KEY_FILE": "/nonexistent/cluster.key"}, "CLUSTER_KEY_FILE /nonexistent/cluster.key not found"),
        ({"CLUSTER_KEY": KEY_A.hex(), "CLUSTER_KEY_FILE": "/x"}, "unset one of them"),
    ],
)
def test_cli_key_environment_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
    env: dict[str, str], expected: str,
) -> None:
    monkeypatch.delenv("CLUSTER_KEY", raising=False)
    monkeypatch.delenv("CLUSTER_KEY_FILE", raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)

    status = cli.main(node_args("--data-dir", str(tmp_path)))

    assert status == cli.EXIT_USAGE
    assert expected in capsys.readouterr().err


def test_node_settings_carry_ring(tmp_path: Path) -> None:
    path = tmp_path / "key"
    path.write_text(KEY_A.hex() + "\n", encoding="ascii")
    args = cli.build_parser().parse_args(node_args("--key-file", str(path)))

    settings = cli.node_settings("sync", args, {})

    assert settings.keys is not None
    assert settings.keys.keys == (KEY_A,)
    assert KEY_A.hex() not in repr(settings)


def test_runtime_requires_keys(tmp_path: Path) -> None:
    from cluster.node.settings import NodeAddress, NodeSettings
    from cluster.node.store_process import StoreRuntime

    address = NodeAddress("127.0.0.1", 7001, 7002)
    settings = NodeSettings("store", 1, (address,), (address,), tmp_path)

    with pytest.raises(ValueError, match="no cluster key"):
        StoreRuntime(settings)


# --- Rejection counts --------------------------------------------------------------------


def test_counter_reports_first_then_batches() -> None:
    counter = RejectionCounter(interval=1.0)

    first = counter.record(RejectReason.WRONG_TAG, "from a", "one", now=10.0)
    batched = [counter.record(RejectReason.WRONG_TAG, "from b", "two", now=10.1 + i / 10) for i in range(3)]
    early = counter.due(now=10.5)
    later = counter.due(now=11.0)

    assert [(r.count, r.new, r.peer) for r in first] == [(1, 1, "from a")]
    assert batched == [[], [], []]
    assert early == []
    assert counter.pending is False
    assert [(r.count, r.new, r.peer, r.detail) for r in later] == [(4, 3, "from b", "two")]


def test_counter_separates_reasons() -> None:
    counter = RejectionCounter(interval=1.0)

    counter.record(RejectReason.WRONG_TAG, "p", "d", now=0.0)
    other = counter.record(RejectReason.REPLAYED_FRAME, "p", "d", now=0.1)

    assert [report.reason for report in other] == [RejectReason.REPLAYED_FRAME]
    assert counter.counts == {RejectReason.WRONG_TAG: 1, RejectReason.REPLAYED_FRAME: 1}


def test_heartbeat_is_tagged_like_any_message() -> None:
    """The tag covers every message type alike; a Heartbeat passes only sealed."""
    acceptor, connector = connect()
    frame = encode(Heartbeat(1, 2, initial_config(3)))

    assert decode_payload(acceptor.receive_data(envelope(connector.seal(frame)))) == Heartbeat(
        1, 2, initial_config(3)
    )


def test_parse_hello_types() -> None:
    assert auth.parse_hello(auth.encode_hello("store", 3, "sync", 1)) == auth.Hello("store", 3, "sync", 1)


def test_cli_run_key_argument_absent_for_client() -> None:
    """Clients hold no key, so `cluster client` has no --key-file flag."""
    parser = cli.build_parser()

    with pytest.raises(SystemExit):
        parser.parse_args(["client", "--key-file", "x"])
    assert isinstance(parser.parse_args(node_args()), argparse.Namespace)
