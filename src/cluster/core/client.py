"""Client session: timestamped messages, retried until each is acknowledged once.

A `ClientSession` numbers its messages 1, 2, 3, ... and keeps a window of them
in flight to one sync node. It keeps a Lamport clock: it increments the clock
before each new message and moves it past every timestamp in a reply. After a
redirect, a timeout or a lost connection it resends every unacknowledged
message in order with its original request id and timestamp, so the leader
can apply each message once and in the order the client sent it.

It never touches sockets or clocks; the driver delivers replies and ticks.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Iterable, Sequence

from cluster.core.effects import Effect, Event, Send
from cluster.core.messages import ClientReply, ClientRequest, ReplyStatus
from cluster.core.spec_names import action
from cluster.core.timers import Timers

logger = logging.getLogger(__name__)

DEFAULT_WINDOW = 32


class ClientSession:
    """One client's protocol state machine."""

    def __init__(
        self,
        client_id: int,
        sync_ids: Sequence[int],
        texts: Iterable[str],
        first_target: int | None = None,
        window: int = DEFAULT_WINDOW,
        timers: Timers | None = None,
        rate_per_tick: float | None = None,
    ) -> None:
        if not sync_ids:
            raise ValueError("a client needs at least one sync node")
        if window < 1:
            raise ValueError(f"client window must be at least 1, got {window}")
        if rate_per_tick is not None and rate_per_tick <= 0:
            raise ValueError(f"client rate must be above 0 messages per tick, got {rate_per_tick}")
        self.client_id = client_id
        self.sync_ids = tuple(sync_ids)
        self.window = window
        self.timers = timers or Timers()
        self.queue: deque[str] = deque(texts)

        self.clock = 0
        self.next_request_id = 1
        # Every sent and unacknowledged request by request id, in the order sent.
        self.in_flight: dict[int, ClientRequest] = {}
        self.target = first_target if first_target in self.sync_ids else self.sync_ids[0]
        self.now = 0
        self.last_progress = 0  # tick of the last acknowledgement or change of target
        self.resend_at = -1  # tick of a scheduled resend after a RETRY, -1 when none
        self.acked = 0
        # Pacing: at most `rate_per_tick` new messages per tick on average, so a
        # run lasts long enough to be broken on purpose; None sends at once.
        self.rate_per_tick = rate_per_tick
        self.send_budget = 1.0 if rate_per_tick is not None else 0.0

    @property
    def done(self) -> bool:
        return not self.queue and not self.in_flight

    # --- Sending -----------------------------------------------------------------

    @action("ClientSend")
    def send_request(self) -> list[Effect]:
        """Fill the window with new messages, each with the next request id and timestamp."""
        effects: list[Effect] = []
        self._fill_window(effects)
        return effects

    def _fill_window(self, effects: list[Effect]) -> None:
        """Append the effects of `send_request` to `effects`."""
        while self.queue and len(self.in_flight) < self.window and self.resend_at < 0:
            if self.rate_per_tick is not None:
                if self.send_budget < 1:
                    break
                self.send_budget -= 1
            text = self.queue.popleft()
            self.clock += 1
            request_id = self.next_request_id
            self.next_request_id += 1
            request = ClientRequest(self.client_id, request_id, self.clock, text)
            self.in_flight[request_id] = request
            effects.append(Event("sent", {"request_id": request_id, "lamport": self.clock, "text": text}))
            effects.append(Send("sync", self.target, request))

    def _resend_all(self) -> list[Effect]:
        self.resend_at = -1
        effects: list[Effect] = [Send("sync", self.target, request) for request in self.in_flight.values()]
        self._fill_window(effects)
        return effects

    def _switch_target(self, hint: int) -> None:
        self.last_progress = self.now
        if hint in self.sync_ids and hint != self.target:
            self.target = hint
            return
        index = self.sync_ids.index(self.target)
        self.target = self.sync_ids[(index + 1) % len(self.sync_ids)]

    # --- Replies -----------------------------------------------------------------

    @action("HandleClientReply")
    def handle_client_reply(self, source: int, reply: ClientReply) -> list[Effect]:
        """Record an acknowledgement, or follow a redirect and resend what is unacknowledged."""
        if reply.status is ReplyStatus.OK:
            return self._acknowledge(reply)
        if source != self.target:
            return []  # a stale answer from a node this client already left

        if reply.status is ReplyStatus.REDIRECT:
            self._switch_target(reply.leader)
            return self._resend_all()
        if reply.status is ReplyStatus.OUT_OF_ORDER:
            # Several replies of one window may say so; one resend answers them all.
            if self.resend_at < 0:
                self.resend_at = self.now + 1
            return []

        # RETRY: no leader or no store configuration yet, or the leader is
        # overloaded. Try the hinted node, or this one again, after a short
        # pause; `client_retry` without an acknowledgement moves on to the next.
        if reply.leader and reply.leader != self.target:
            self._switch_target(reply.leader)
        if self.resend_at < 0:
            self.resend_at = self.now + self.timers.client_backoff
        return []

    def _acknowledge(self, reply: ClientReply) -> list[Effect]:
        if self.in_flight.pop(reply.request_id, None) is None:
            return []  # a second answer to a resent message
        self.clock = max(self.clock, reply.lamport) + 1
        self.acked += 1
        self.last_progress = self.now
        effects: list[Effect] = [
            Event("acked", {"request_id": reply.request_id, "seq": reply.seq, "term": reply.term,
                            "lamport": reply.lamport}),
        ]
        self._fill_window(effects)
        return effects

    # --- Timers and connections -----------------------------------------------------

    def tick(self) -> list[Effect]:
        self.now += 1
        if 0 <= self.resend_at <= self.now:
            return self._resend_all()
        effects: list[Effect] = []
        if self.rate_per_tick is not None:
            self.send_budget = min(self.send_budget + self.rate_per_tick, float(self.window))
            if self.send_budget >= 1 and self.resend_at < 0:
                self._fill_window(effects)
        if self.in_flight and self.now - self.last_progress >= self.timers.client_retry:
            logger.info("client %d: nothing acknowledged by sync %d in time, trying the next node",
                        self.client_id, self.target)
            self._switch_target(0)
            effects += self._resend_all()
        return effects

    def idle_ticks(self) -> int | None:
        """Return how many of the next `tick` calls would only count, or None when every one would.

        The count stays valid until another handler runs. A driver may pass
        that many ticks to `skip` instead of calling `tick`, and wake up only
        for the tick after them.
        """
        if self.rate_per_tick is not None:
            return 0  # every tick adds to the send budget
        deadlines = []
        if self.resend_at >= 0:
            deadlines.append(self.resend_at)
        if self.in_flight:
            deadlines.append(self.last_progress + self.timers.client_retry)
        if not deadlines:
            return None
        return max(0, min(deadlines) - self.now - 1)

    def skip(self, ticks: int) -> None:
        """Count `ticks` ticks at once, as that many `tick` calls would when `idle_ticks` allows them."""
        idle = self.idle_ticks()
        if ticks < 0 or (idle is not None and ticks > idle):
            raise ValueError(f"cannot skip {ticks} ticks, only {idle} are idle")
        self.now += ticks

    def handle_disconnect(self, node: int) -> list[Effect]:
        """The connection to sync node `node` closed: move on and resend after a pause."""
        if node != self.target:
            return []
        self._switch_target(0)
        if self.in_flight and self.resend_at < 0:
            self.resend_at = self.now + self.timers.client_backoff
        return []
