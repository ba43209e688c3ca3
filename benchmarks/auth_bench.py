"""Measure the cost of peer authentication: frames per second with and without the HMAC tag.

Run from the repository root with the package installed:

    python benchmarks/auth_bench.py

For each message it prints three rates, all in one process on one core:
- plain: encode, then decode the payload, as on a client port;
- tagged: encode, seal (sequence number and HMAC-SHA256 tag), verify, then
  decode, as on a cluster port;
- tag only: seal and verify an already encoded frame, the part that
  authentication adds.

The numbers depend on the machine and the Python build, so compare runs on
one machine only.
"""

from __future__ import annotations

import secrets

from wire_bench import frames_per_second

from cluster import wire
from cluster.core.messages import ClientRequest, Entry, Heartbeat, Replicate, initial_config
from cluster.net import auth


def connected_pair() -> tuple[auth.Acceptor, auth.Connector]:
    """Return both ends of one connection after a real handshake."""
    ring = auth.KeyRing((secrets.token_bytes(32),), "benchmark key")
    acceptor = auth.Acceptor(ring, "store", 1, frozenset({("sync", 1)}), secrets.token_bytes(auth.NONCE_BYTES))
    connector = auth.Connector(ring, "sync", 1, "store", 1, secrets.token_bytes(auth.NONCE_BYTES))
    challenge = acceptor.receive_open(connector.open_frame()[wire.LENGTH_BYTES :])
    hello = connector.receive_challenge(challenge[wire.LENGTH_BYTES :])
    acceptor.receive_hello(hello[wire.LENGTH_BYTES :])
    return acceptor, connector


def measure(label: str, message: wire.Message) -> None:
    """Print the plain, tagged and tag-only rates for `message`."""
    acceptor, connector = connected_pair()
    frame = wire.encode(message)
    sealed = connector.seal(frame)
    assert wire.decode_payload(acceptor.receive_data(sealed[wire.LENGTH_BYTES :])) == message

    def plain() -> None:
        wire.decode_payload(wire.encode(message)[wire.LENGTH_BYTES :])

    def tagged() -> None:
        envelope = connector.seal(wire.encode(message))[wire.LENGTH_BYTES :]
        wire.decode_payload(acceptor.receive_data(envelope))

    def tag_only() -> None:
        acceptor.receive_data(connector.seal(frame)[wire.LENGTH_BYTES :])

    plain_rate = frames_per_second(plain)
    tagged_rate = frames_per_second(tagged)
    tag_rate = frames_per_second(tag_only)
    cost = 100 * (plain_rate - tagged_rate) / plain_rate
    print(
        f"{label:<24} {len(frame):>7} bytes  plain {plain_rate:>10,.0f}/s  tagged {tagged_rate:>10,.0f}/s"
        f"  ({cost:4.1f}% fewer)  tag only {tag_rate:>10,.0f}/s"
    )


def main() -> None:
    entries = tuple(
        Entry(
            seq=1000 + i,
            term=7,
            lamport=50_000 + i,
            client_id=1 + i % 5,
            request_id=200 + i,
            text=f"client message number {i}, with some text",
        )
        for i in range(256)
    )
    measure("Replicate, 256 entries", Replicate(3, 1, 999, entries, 998))
    measure("Heartbeat", Heartbeat(7, 2, initial_config(3)))
    measure("ClientRequest", ClientRequest(3, 17, 4242, "hello, cluster"))


if __name__ == "__main__":
    main()
