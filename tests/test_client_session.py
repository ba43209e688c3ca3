"""Unit tests of the client session: window, Lamport clock, resends and replies.

The rules are those of docs/protocol.md ("Clients, Lamport clocks and
exactly once"); the clock rules are Lamport's (1978) IR1 and IR2.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import pytest

from cluster.core.client import ClientSession
from cluster.core.effects import Effect, Event, Send
from cluster.core.messages import ClientReply, ClientRequest, ReplyStatus
from cluster.core.timers import Timers

SYNC_IDS = (1, 2, 3)
TIMERS = Timers()


def make_client(texts: Sequence[str] = ("a", "b", "c", "d", "e"), window: int = 3) -> ClientSession:
    return ClientSession(7, SYNC_IDS, texts, first_target=1, window=window, timers=TIMERS)


def requests(effects: Sequence[Effect]) -> list[ClientRequest]:
    return [effect.message for effect in effects if isinstance(effect, Send)]


def targets(effects: Sequence[Effect]) -> list[int]:
    return [effect.node for effect in effects if isinstance(effect, Send)]


def reply(
    status: ReplyStatus, request_id: int = 1, lamport: int = 0, leader: int = 0, expected: int = 0
) -> ClientReply:
    return ClientReply(status, 7, request_id, request_id, 1, lamport, leader, expected)


def ok(request_id: int, lamport: int) -> ClientReply:
    return reply(ReplyStatus.OK, request_id, lamport, leader=1)


def tick(client: ClientSession, count: int) -> list[Effect]:
    effects: list[Effect] = []
    for _ in range(count):
        effects += client.tick()
    return effects


def test_window_fill() -> None:
    """A client sends new messages until its window is full, numbered 1, 2, 3 (docs/protocol.md)."""
    client = make_client()

    effects = client.send_request()

    assert [r.request_id for r in requests(effects)] == [1, 2, 3]
    assert [r.text for r in requests(effects)] == ["a", "b", "c"]
    assert targets(effects) == [1, 1, 1]
    assert list(client.queue) == ["d", "e"]


def test_clock_ticks_before_send() -> None:
    """The client increments its Lamport clock before each send (Lamport 1978, IR1)."""
    client = make_client()

    effects = client.send_request()

    assert [r.lamport for r in requests(effects)] == [1, 2, 3]
    assert client.clock == 3


def test_clock_passes_reply() -> None:
    """On each reply the clock becomes max(own, received) + 1, and the next send is later still (IR2)."""
    client = make_client()
    client.send_request()

    effects = client.handle_client_reply(1, ok(1, 40))

    assert client.clock == 42
    assert [r.lamport for r in requests(effects)] == [42]
    assert [r.request_id for r in requests(effects)] == [4]


def test_clock_keeps_larger_own() -> None:
    """A reply with an older timestamp still moves the clock forward by one."""
    client = make_client()
    client.send_request()

    client.handle_client_reply(1, ok(1, 1))

    assert client.clock == 5


def redirect(client: ClientSession) -> list[Effect]:
    return client.handle_client_reply(1, reply(ReplyStatus.REDIRECT, leader=3))


def time_out(client: ClientSession) -> list[Effect]:
    return tick(client, TIMERS.client_retry)


def disconnect(client: ClientSession) -> list[Effect]:
    return client.handle_disconnect(1) + tick(client, TIMERS.client_backoff)


def retry(client: ClientSession) -> list[Effect]:
    return client.handle_client_reply(1, reply(ReplyStatus.RETRY)) + tick(client, TIMERS.client_backoff)


def out_of_order(client: ClientSession) -> list[Effect]:
    effects = client.handle_client_reply(1, reply(ReplyStatus.OUT_OF_ORDER, 2, expected=1))
    effects += client.handle_client_reply(1, reply(ReplyStatus.OUT_OF_ORDER, 3, expected=1))
    return effects + tick(client, 1)


TRIGGERS: dict[str, tuple[Callable[[ClientSession], list[Effect]], int]] = {
    "redirect": (redirect, 3),
    "timeout": (time_out, 2),
    "disconnect": (disconnect, 2),
    "retry": (retry, 1),
    "out-of-order": (out_of_order, 1),
}


@pytest.mark.parametrize("trigger", TRIGGERS)
def test_resend_all_unacked(trigger: str) -> None:
    """After a redirect, timeout, disconnect, RETRY or OUT_OF_ORDER the client resends each unacknowledged message.

    The resend goes out once, in order, with the original request ids and
    timestamps (docs/protocol.md).
    """
    client = make_client()
    client.send_request()
    client.handle_client_reply(1, ok(2, 0))
    action, target = TRIGGERS[trigger]

    effects = action(client)

    assert [(r.request_id, r.lamport) for r in requests(effects)] == [(1, 1), (3, 3), (4, 5)]
    assert set(targets(effects)) == {target}


@pytest.mark.parametrize("trigger", ["disconnect", "retry", "out-of-order"])
def test_no_resend_before_backoff(trigger: str) -> None:
    """A resend after a disconnect, RETRY or OUT_OF_ORDER waits for its pause; nothing leaves at once."""
    client = make_client()
    client.send_request()

    if trigger == "disconnect":
        effects = client.handle_disconnect(1)
    elif trigger == "retry":
        effects = client.handle_client_reply(1, reply(ReplyStatus.RETRY))
    else:
        effects = client.handle_client_reply(1, reply(ReplyStatus.OUT_OF_ORDER, 2, expected=1))

    assert requests(effects) == []


def test_no_timeout_before_client_retry() -> None:
    """A client with unanswered messages waits client_retry ticks before it moves on."""
    client = make_client()
    client.send_request()

    effects = tick(client, TIMERS.client_retry - 1)

    assert requests(effects) == []
    assert client.target == 1


def test_stale_reply_ignored() -> None:
    """A non-OK reply from a node the client already left changes nothing."""
    client = make_client()
    client.send_request()
    redirect(client)

    effects = client.handle_client_reply(1, reply(ReplyStatus.REDIRECT, leader=2))

    assert effects == []
    assert client.target == 3
    assert client.resend_at == -1


def test_duplicate_ok_ignored() -> None:
    """A second OK for a message already acknowledged changes neither the clock nor the count."""
    client = make_client()
    client.send_request()
    client.handle_client_reply(1, ok(1, 10))
    clock = client.clock

    effects = client.handle_client_reply(2, ok(1, 99))

    assert effects == []
    assert client.clock == clock
    assert client.acked == 1


def test_ok_event_reports_seq() -> None:
    """An acknowledgement is logged with the request id, seq, term and Lamport stamp of the reply."""
    client = make_client()
    client.send_request()

    effects = client.handle_client_reply(1, ok(2, 10))

    acked = [effect for effect in effects if isinstance(effect, Event) and effect.name == "acked"]
    assert acked == [Event("acked", {"request_id": 2, "seq": 2, "term": 1, "lamport": 10})]


def test_no_new_send_while_resend_pending() -> None:
    """While a resend is scheduled, an acknowledgement sends nothing new."""
    client = make_client()
    client.send_request()
    client.handle_client_reply(1, reply(ReplyStatus.RETRY))

    effects = client.handle_client_reply(1, ok(1, 5))

    assert requests(effects) == []


def test_done_after_all_acked() -> None:
    """`done` is true only once every message was sent and acknowledged."""
    client = make_client(texts=("a", "b"), window=1)
    client.send_request()
    client.handle_client_reply(1, ok(1, 3))
    assert not client.done

    client.handle_client_reply(1, ok(2, 6))

    assert client.done


def test_retry_hint_keeps_target() -> None:
    """A RETRY that names the current target as leader makes the client retry that node after the pause."""
    client = make_client()
    client.send_request()

    effects = client.handle_client_reply(1, reply(ReplyStatus.RETRY, leader=1)) + tick(client, TIMERS.client_backoff)

    assert set(targets(effects)) == {1}


def test_endless_retry_moves_on() -> None:
    """A client whose node answers only RETRY for client_retry ticks tries another node."""
    client = make_client()
    effects = client.send_request()

    seen: list[int] = []
    for _ in range(2 * TIMERS.client_retry):
        for send in effects:
            if isinstance(send, Send):
                seen.append(send.node)
                client.handle_client_reply(send.node, reply(ReplyStatus.RETRY, send.message.request_id))
        effects = client.tick()

    assert set(seen) != {1}


def test_empty_sync_ids_rejected() -> None:
    """A client without sync nodes is rejected at construction."""
    with pytest.raises(ValueError, match="at least one sync node"):
        ClientSession(7, (), ["a"])


def test_zero_window_rejected() -> None:
    """A window below 1 is rejected at construction."""
    with pytest.raises(ValueError, match="window must be at least 1, got 0"):
        ClientSession(7, SYNC_IDS, ["a"], window=0)


def test_rate_paces_new_messages() -> None:
    """With a rate of 0.5 per tick, a client sends one new message every other tick."""
    client = ClientSession(1, [1, 2, 3], [f"m{index}" for index in range(10)], first_target=1, rate_per_tick=0.5)

    first = client.send_request()
    later = [client.tick() for _ in range(6)]

    assert len(targets(first)) == 1
    assert [len(targets(effects)) for effects in later] == [0, 1, 0, 1, 0, 1]


def test_rate_must_be_positive() -> None:
    with pytest.raises(ValueError, match="rate"):
        ClientSession(1, [1], ["m"], rate_per_tick=0)


# --- Idle ticks -----------------------------------------------------------------------


def idle_then_tick(client: ClientSession) -> list[Effect]:
    """Skip every idle tick, then run the tick that acts."""
    idle = client.idle_ticks()
    assert idle is not None
    client.skip(idle)
    return client.tick()


IDLE_CASES: dict[str, tuple[Callable[[ClientSession], object], int]] = {
    "timeout": (lambda client: None, TIMERS.client_retry - 1),
    "after_ack": (lambda client: (tick(client, 10), client.handle_client_reply(1, ok(1, 0))),
                  TIMERS.client_retry - 1),
    "retry": (lambda client: client.handle_client_reply(1, reply(ReplyStatus.RETRY)), TIMERS.client_backoff - 1),
    "disconnect": (lambda client: client.handle_disconnect(1), TIMERS.client_backoff - 1),
    "out_of_order": (lambda client: client.handle_client_reply(1, reply(ReplyStatus.OUT_OF_ORDER, 2, expected=1)), 0),
}


@pytest.mark.parametrize("case", IDLE_CASES)
def test_idle_ticks_until_next_action(case: str) -> None:
    """idle_ticks counts the ticks before the one that resends or times out."""
    client = make_client()
    client.send_request()
    prepare, expected = IDLE_CASES[case]
    prepare(client)

    assert client.idle_ticks() == expected


@pytest.mark.parametrize("case", IDLE_CASES)
def test_skip_matches_ticking(case: str) -> None:
    """Skipping the idle ticks and running the next one has the effects of ticking one by one."""
    prepare, expected = IDLE_CASES[case]
    ticked, skipped = make_client(), make_client()
    for client in (ticked, skipped):
        client.send_request()
        prepare(client)

    one_by_one = tick(ticked, expected + 1)
    at_once = idle_then_tick(skipped)

    assert one_by_one == at_once
    assert requests(at_once) != []
    assert (skipped.now, skipped.target) == (ticked.now, ticked.target)


def test_idle_ticks_none_when_nothing_pending() -> None:
    client = make_client(texts=("a",))
    client.send_request()
    client.handle_client_reply(1, ok(1, 0))

    assert client.done
    assert client.idle_ticks() is None
    client.skip(1000)
    assert client.tick() == []


def test_idle_ticks_zero_with_rate() -> None:
    """A paced client adds to its send budget on every tick, so no tick is idle."""
    client = ClientSession(1, [1, 2, 3], ["m1", "m2"], first_target=1, rate_per_tick=0.5)
    client.send_request()

    assert client.idle_ticks() == 0


def test_skip_past_action_rejected() -> None:
    client = make_client()
    client.send_request()

    with pytest.raises(ValueError, match=f"cannot skip {TIMERS.client_retry} ticks, only {TIMERS.client_retry - 1}"):
        client.skip(TIMERS.client_retry)
    assert client.now == 0
