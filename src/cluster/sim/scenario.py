"""Scenario files: hand-written schedules of the simulator with their expected output.

A scenario file is plain text. Each block is one command line, a line
`----`, and the output the command is expected to print, up to the next
blank line:

    # Lines that start with '#' are comments; blank lines separate blocks.
    cluster sync=3 store=2 clients=1 messages=1 seed=1
    ----
    3 sync nodes, 2 store nodes, 1 client with 1 message each, seed 1
    in flight: client 1 -> sync 1: ClientRequest (client 1 request 1, lamport 1)

    tick sync 1 until pre-candidate
    ----
    tick 36: sync 1 sent PreVote (term 1, epoch 0) to sync 2, sync 3
    sync 1 is pre-candidate after 36 ticks

An output never contains a blank line. A command without a `----` line has no
expected output yet, and a rewrite fills it in. `run_scenario` runs every
command on a fresh in-memory cluster (`cluster.sim.world.World`, the real
protocol state machines). `rewrite_scenario` returns the file with the actual
output in place of the expected one. From the shell,
`python -m cluster.sim.scenario FILE [--rewrite]` does either.

Every step goes through `cluster.sim.runner.Runner`, so the invariants are
checked after each one. The first time an invariant breaks, the command
prints a line `<name> violated: <details>` under the step that broke it.

Commands (ADDR is `sync N`, `store N` or `client N`):

    cluster key=value ...        first line: sync, store, clients, messages, seed,
                                 window, bugs (comma-separated bug switches) and any
                                 field of `cluster.core.timers.Timers` (see SETTING_RANGES)
    tick ADDR [xN]               advance one node or client N ticks (default 1)
    tick ADDR until ROLE         tick a sync node until it is follower, pre-candidate,
                                 candidate or leader (at most 10 election timeouts)
    tick all [xN]                tick every running node and client, N times
    rounds N                     N fair rounds: deliver what is in flight, complete
                                 pending output operations, tick everything once;
                                 prints only what the nodes did
    deliver all [except SEL]     deliver messages and complete output operations
                                 until nothing is left (paused nodes wait)
    deliver SEL [xN]             deliver the messages SEL matches, oldest first
    drop SEL [xN]                the network loses them
    duplicate SEL [xN]           the network delivers each of them twice
    complete output all [xN]     finish pending output.txt operations
    complete output ADDR [xN]    ... of one sync node
    crash ADDR, restart ADDR     stop a sync or store node, start it from its disk
    pause ADDR, resume ADDR      stop a node as SIGSTOP does, and let it go on
    partition ADDR, ADDR ...     cut those nodes off from the rest until `heal`
    heal
    status                       role, term, leader and epoch of every node, store
                                 logs and commit indexes, clients, output.txt
    output                       the entries of output.txt
    network                      the messages in flight
    check invariants             every invariant that is violated, or that all hold

Every count N (`xN`, `rounds N`) is from 1 to MAX_COUNT (10000). Every
timer is from 1 to `cluster.core.timers.MAX_TIMER_TICKS` (1000) ticks.

A selector SEL is `FROM -> TO [Type]`. FROM and TO are an address, a role
alone (`sync` matches every sync node) or `*`; Type is a message class name
such as `RequestVote`. It matches the messages in flight when the command
starts, in the order they were sent. A command that cannot happen (no
message matches, the node is down) prints why instead of failing, so a
scenario can show that something did not happen.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from cluster.core.bugs import Bug, parse_bugs
from cluster.core.effects import AppendOutput, FenceOutput
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
    StorePing,
    StoreStatus,
    VoteReply,
    Write,
    WriteAck,
    WriteReject,
)
from cluster.core.sync_node import Role
from cluster.core.timers import MAX_TIMER_TICKS, Timers, TimersError
from cluster.i18n import _
from cluster.sim.events import SimEvent, applicable, format_address, parse_address
from cluster.sim.report import NOTABLE_EVENTS, describe_message, describe_node_event
from cluster.sim.runner import INVARIANTS, MAX_SEED, SETTING_BOUNDS, Runner, SimConfig, describe_timers_error
from cluster.sim.world import Address, Packet, PendingOutput, World

SEPARATOR = "----"
REWRITE_VARIABLE = "SCENARIO_REWRITE"

# Steps one `deliver all` may take before it gives up; only a message loop
# that never settles (a protocol mistake) reaches it.
MAX_SETTLE_STEPS = 20_000
# `tick ADDR until ROLE` gives up after this many election timeouts.
UNTIL_TIMEOUTS = 10
# Upper bound of every count (`xN`, `rounds N`). It is the longest
# `tick ADDR until ROLE` (UNTIL_TIMEOUTS election timeouts of MAX_TIMER_TICKS),
# so a count can wait as long as `until` does. The files in tests/scenarios/ use 40 at most.
# NOTE: the bound limits steps, not time. A round of the largest cluster
# (15 sync, 15 store, 15 clients) delivers hundreds of messages, so
# `rounds 10000` of that cluster runs for a long time.
MAX_COUNT = UNTIL_TIMEOUTS * MAX_TIMER_TICKS

MESSAGE_TYPES = frozenset(
    kind.__name__
    for kind in (
        PreVote, PreVoteReply, RequestVote, VoteReply, Heartbeat, HeartbeatReply, NewEpoch, Write,
        StorePing, FetchEntries, EpochReady, WriteAck, WriteReject, StoreStatus, FetchReply, EpochSync,
        EpochSyncReply, Replicate, ReplicateReply, Commit, CatchUp, CatchUpReply, ClientRequest, ClientReply,
    )
)
ROLES = ("sync", "store", "client")
SYNC_ROLES = {role.value: role for role in Role}
CLUSTER_KEYS = ("sync", "store", "clients", "messages", "seed", "window", "bugs")
TIMER_KEYS = tuple(item.name for item in fields(Timers))
MAX_NODES = 15
# Inclusive range of each numeric `cluster` setting. The timers' relations (such as
# heartbeat_interval < election_timeout_min) are checked by `Timers` itself.
SETTING_RANGES: dict[str, tuple[int, int]] = {
    "sync": (1, MAX_NODES),
    "store": (1, MAX_NODES),
    "clients": (0, MAX_NODES),
    "messages": (0, 1000),
    "seed": (0, MAX_SEED),
    "window": SETTING_BOUNDS["window"],
    **{key: (1, MAX_TIMER_TICKS) for key in TIMER_KEYS},
}


class ScenarioError(ValueError):
    """A scenario file or command is invalid; the message names the line and the fix."""


# --- File format ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Block:
    """One command of a scenario file, with the lines before it and its expected output."""

    line: int  # 1-based line number of the command
    preamble: tuple[str, ...]  # comment and blank lines before the command, verbatim
    command: str
    expected: tuple[str, ...] | None  # None when the file has no `----` after the command


@dataclass(frozen=True, slots=True)
class ScenarioFile:
    blocks: tuple[Block, ...]
    trailer: tuple[str, ...]  # comment and blank lines after the last block


def parse_scenario(text: str) -> ScenarioFile:
    """Split a scenario file into blocks; raise ScenarioError on a misplaced `----`."""
    lines = text.splitlines()
    blocks: list[Block] = []
    preamble: list[str] = []
    index = 0
    while index < len(lines):
        line = lines[index]
        if not line.strip() or line.startswith("#"):
            preamble.append(line)
            index += 1
            continue
        if line == SEPARATOR:
            raise ScenarioError(_("line {line}: '{separator}' without a command before it").format(
                line=index + 1, separator=SEPARATOR))

        command_line = index + 1
        index += 1
        expected: tuple[str, ...] | None = None
        if index < len(lines) and lines[index] == SEPARATOR:
            index += 1
            output: list[str] = []
            while index < len(lines) and lines[index].strip():
                output.append(lines[index])
                index += 1
            expected = tuple(output)
        blocks.append(Block(command_line, tuple(preamble), line.strip(), expected))
        preamble = []
    return ScenarioFile(tuple(blocks), tuple(preamble))


def render_scenario(scenario: ScenarioFile, outputs: Sequence[Sequence[str]]) -> str:
    """Return the file text with `outputs[i]` as the output of block i."""
    lines: list[str] = []
    for block, output in zip(scenario.blocks, outputs, strict=True):
        if lines and (not block.preamble or block.preamble[0].strip()):
            lines.append("")
        lines += [*block.preamble, block.command, SEPARATOR, *output]
    lines += scenario.trailer
    return "\n".join(lines) + "\n"


@dataclass(frozen=True, slots=True)
class Mismatch:
    """A command whose actual output differs from the expected one."""

    line: int
    command: str
    expected: tuple[str, ...] | None
    actual: tuple[str, ...]

    def describe(self) -> str:
        expected = "\n".join(self.expected) if self.expected is not None else _("(no expected output)")
        return "\n".join([_("line {line}: {command}").format(line=self.line, command=self.command),
                          _("--- expected"), expected, _("--- actual"), *self.actual])


def run_scenario(text: str) -> tuple[ScenarioFile, list[tuple[str, ...]]]:
    """Run every command of a scenario file and return the parsed file and each command's output."""
    scenario = parse_scenario(text)
    interpreter = Interpreter()
    outputs: list[tuple[str, ...]] = []
    for block in scenario.blocks:
        try:
            outputs.append(tuple(interpreter.execute(block.command)))
        except ScenarioError as error:
            raise ScenarioError(_("line {line}: {error}").format(line=block.line, error=error)) from None
    return scenario, outputs


def find_mismatches(text: str) -> list[Mismatch]:
    """Run a scenario file and return every command whose output differs from the file."""
    scenario, outputs = run_scenario(text)
    return [
        Mismatch(block.line, block.command, block.expected, output)
        for block, output in zip(scenario.blocks, outputs, strict=True)
        if block.expected != output
    ]


def rewrite_scenario(text: str) -> str:
    """Return the scenario file with every expected output replaced by the actual one."""
    scenario, outputs = run_scenario(text)
    return render_scenario(scenario, outputs)


# --- Selectors --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One side of a selector: None matches any role or any node id."""

    role: str | None
    node: int | None

    def matches(self, address: Address) -> bool:
        return (self.role is None or self.role == address[0]) and (self.node is None or self.node == address[1])

    def __str__(self) -> str:
        if self.role is None:
            return "*"
        return self.role if self.node is None else f"{self.role} {self.node}"


@dataclass(frozen=True, slots=True)
class Selector:
    """Messages in flight from `source` to `target`, of class `kind` (None for any)."""

    source: Endpoint
    target: Endpoint
    kind: str | None

    def matches(self, packet: Packet) -> bool:
        return (
            self.source.matches(packet.source)
            and self.target.matches(packet.target)
            and (self.kind is None or type(packet.message).__name__ == self.kind)
        )

    def __str__(self) -> str:
        text = f"{self.source} -> {self.target}"
        return f"{text} {self.kind}" if self.kind else text


def parse_endpoint(tokens: Sequence[str]) -> Endpoint:
    text = " ".join(tokens)
    if text == "*":
        return Endpoint(None, None)
    if len(tokens) == 1 and tokens[0] in ROLES:
        return Endpoint(tokens[0], None)
    try:
        role, node = parse_address(text)
    except ValueError:
        raise ScenarioError(_("invalid endpoint {text!r}; expected e.g. 'sync 2', 'store', or '*'").format(
            text=text)) from None
    return Endpoint(role, node)


def parse_selector(tokens: Sequence[str]) -> Selector:
    """Parse `FROM -> TO [Type]`."""
    if tokens.count("->") != 1:
        raise ScenarioError(_("invalid selector {text!r}; expected 'FROM -> TO [Type]'").format(text=" ".join(tokens)))
    arrow = tokens.index("->")
    source = parse_endpoint(tokens[:arrow])
    rest = list(tokens[arrow + 1 :])
    kind: str | None = None
    if rest and rest[-1][:1].isupper():
        kind = rest.pop()
        if kind not in MESSAGE_TYPES:
            raise ScenarioError(_("unknown message type {kind!r}; known types: {known}").format(
                kind=kind, known=", ".join(sorted(MESSAGE_TYPES))))
    return Selector(source, parse_endpoint(rest), kind)


def split_count(tokens: Sequence[str]) -> tuple[list[str], int | None]:
    """Split a trailing `xN` off `tokens`; return the rest and N (None when absent)."""
    if tokens and tokens[-1].startswith("x") and tokens[-1][1:].isdigit():
        count = parse_count(tokens[-1][1:])
        if count is None:
            raise ScenarioError(_("invalid count {count!r}; expected x1 to x{high}").format(
                count=tokens[-1], high=MAX_COUNT))
        return list(tokens[:-1]), count
    return list(tokens), None


def parse_count(text: str) -> int | None:
    """Return `text` as a count from 1 to MAX_COUNT, or None when it is anything else."""
    # int() rejects digit strings longer than sys.get_int_max_str_digits(), so check the length first.
    if not text.isdigit() or len(text) > len(str(MAX_COUNT)):
        return None
    try:
        count = int(text)
    except ValueError:  # a Unicode digit that is not decimal, such as '²'
        return None
    return count if 1 <= count <= MAX_COUNT else None


def parse_node(tokens: Sequence[str], roles: Sequence[str] = ROLES) -> Address:
    text = " ".join(tokens)
    try:
        address = parse_address(text)
    except ValueError as error:
        raise ScenarioError(str(error)) from None
    if address[0] not in roles:
        raise ScenarioError(_("invalid node {text!r}; expected a {roles} node").format(
            text=text, roles=_(" or ").join(roles)))
    return address


# --- Words -------------------------------------------------------------------------------------


def describe(message: Any) -> str:
    """Name a message and its key fields, as the simulator's reports do."""
    if isinstance(message, PreVote):
        return f"PreVote (term {message.term}, epoch {message.config.epoch})"
    if isinstance(message, PreVoteReply):
        return f"PreVoteReply (term {message.term}, {'granted' if message.granted else 'denied'})"
    return describe_message(message)


def describe_packet(packet: Packet) -> str:
    return f"{format_address(packet.source)} -> {format_address(packet.target)}: {describe(packet.message)}"


def plural(count: int, noun: str, nouns: str | None = None) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {nouns or noun + 's'}"


def seq_range(first: int, last: int) -> str:
    return f"seq {first}" if first == last else f"seq {first}-{last}"


# --- Interpreter ---------------------------------------------------------------------------------


@dataclass(slots=True)
class StepReport:
    """Lines to print under one step, and the messages the step put in flight."""

    lines: list[str]
    sent: list[Packet]


class Interpreter:
    """Interpreter of scenario commands, run one by one on one simulated cluster."""

    def __init__(self) -> None:
        self._runner: Runner | None = None
        self._reported: set[str] = set()
        self._commands: dict[str, Callable[[list[str]], list[str]]] = {
            "tick": self._tick,
            "rounds": self._rounds,
            "deliver": self._deliver,
            "drop": self._drop_or_duplicate,
            "duplicate": self._drop_or_duplicate,
            "complete": self._complete,
            "crash": self._node_fault,
            "restart": self._node_fault,
            "pause": self._node_fault,
            "resume": self._node_fault,
            "partition": self._partition,
            "heal": self._heal,
            "status": self._status,
            "output": self._output,
            "network": self._network,
            "check": self._check,
        }

    @property
    def world(self) -> World:
        return self._require_runner().world

    def _require_runner(self) -> Runner:
        """Return the runner that the first command made, or raise ScenarioError if none did."""
        if self._runner is None:
            raise ScenarioError(_("the first command must be 'cluster ...'"))
        return self._runner

    def execute(self, command: str) -> list[str]:
        """Run one command and return the lines it prints (never empty, never blank)."""
        tokens = command.split()
        if not tokens:
            raise ScenarioError(_("empty command"))
        name = tokens[0]
        if name != "cluster" and name not in self._commands:
            known = ", ".join(["cluster", *sorted(self._commands)])
            raise ScenarioError(_("unknown command {name!r}; known commands: {known}").format(name=name, known=known))
        try:
            if name == "cluster":
                lines = self._cluster(tokens[1:])
            else:
                self._require_runner()
                lines = self._commands[name](tokens)
        except ScenarioError as error:
            message = _("invalid command {command!r}: {error}").format(command=command, error=error)
            raise ScenarioError(message) from None
        return lines or ["nothing happened"]

    # --- Steps --------------------------------------------------------------------

    def _step(self, event: SimEvent) -> StepReport:
        """Apply one event through the runner and report what the nodes did."""
        assert self._runner is not None
        world = self.world
        seen_events = len(world.events)
        first_packet = world.next_packet_id
        output_before = len(world.output)
        fence_before = world.fence
        pending = world.find_output(event.node[1], event.seq) if event.op == "output" and event.node else None

        self._runner.step(event)

        lines: list[str] = []
        if pending is not None:
            lines.append("  " + self._output_result(pending, output_before, fence_before))
        lines += [
            "  " + describe_node_event(address, node_event)
            for address, node_event in world.events[seen_events:]
            if node_event.name in NOTABLE_EVENTS
        ]
        lines += self._new_violations()
        sent = [packet for packet in world.network if packet.id >= first_packet]
        return StepReport(lines, sent)

    def _output_result(self, pending: PendingOutput, output_before: int, fence_before: int) -> str:
        world = self.world
        effect = pending.effect
        if isinstance(effect, FenceOutput):
            if effect.term < fence_before:
                return f"output.txt: fence refused, it is at term {fence_before}"
            return f"output.txt: fence at term {world.fence}"
        assert isinstance(effect, AppendOutput)
        if len(world.output) > output_before:
            appended = world.output[output_before:]
            return f"output.txt: appended {seq_range(appended[0].seq, appended[-1].seq)}"
        if effect.term < fence_before:
            return f"output.txt: append refused, the fence is at term {fence_before}"
        return "output.txt: nothing new to append"

    def _new_violations(self) -> list[str]:
        found = self.world.check_invariants()
        lines: list[str] = []
        for name in INVARIANTS:
            if name in found and name not in self._reported:
                self._reported.add(name)
                lines.append(f"  {name} violated: {'; '.join(found[name])}")
        return lines

    def _deliver_packet(self, packet: Packet) -> list[str]:
        world = self.world
        event = SimEvent("deliver", source=packet.source, target=packet.target, seq=packet.seq)
        out_of_order = any(
            other.source == packet.source and other.target == packet.target and other.seq < packet.seq
            for other in world.network
        )
        line = f"deliver {describe_packet(packet)}"
        if out_of_order:
            line += " (out of order)"
        if not world.is_live(packet.target):
            line += f" (lost: {format_address(packet.target)} is down)"
        return [line, *self._step(event).lines]

    def _complete_output(self, pending: PendingOutput) -> list[str]:
        effect = pending.effect
        node = ("sync", pending.node)
        if isinstance(effect, AppendOutput):
            entries = effect.entries
            what = f"append (term {effect.term}, {seq_range(entries[0].seq, entries[-1].seq)})"
        else:
            what = f"fence (term {effect.term})"
        report = self._step(SimEvent("output", node=node, seq=pending.seq))
        return [f"complete output {what} of {format_address(node)}", *report.lines]

    def _tick_once(self, address: Address) -> list[str]:
        report = self._step(SimEvent("tick", node=address))
        return report.lines + self._sends(report.sent)

    @staticmethod
    def _sends(packets: Sequence[Packet]) -> list[str]:
        """Group sent messages into one line per sender and message, naming every receiver."""
        groups: dict[tuple[Address, str], list[str]] = {}
        for packet in packets:
            groups.setdefault((packet.source, describe(packet.message)), []).append(format_address(packet.target))
        return [
            f"  {format_address(source)} sent {message} to {', '.join(targets)}"
            for (source, message), targets in groups.items()
        ]

    def _node(self, tokens: Sequence[str], roles: Sequence[str] = ROLES) -> Address:
        """Parse an address of a node or client of this cluster."""
        address = parse_node(tokens, roles)
        world = self.world
        ids = {"sync": world.sync_ids, "store": world.store_ids, "client": world.client_ids}[address[0]]
        if address[1] not in ids:
            raise ScenarioError(_("no {address} in this cluster; it has {role} 1 to {count}").format(
                address=format_address(address), role=address[0], count=len(ids)))
        return address

    def _runnable(self, address: Address) -> bool:
        return self.world.is_live(address) and address not in self.world.paused

    def _why_not(self, address: Address) -> str:
        state = "paused" if address in self.world.paused else "down"
        return f"{format_address(address)} is {state}"

    def _deliverable(self, exclude: Selector | None = None) -> list[Packet]:
        world = self.world
        return [
            packet
            for packet in world.network
            if packet.target not in world.paused and (exclude is None or not exclude.matches(packet))
        ]

    def _completable(self) -> list[PendingOutput]:
        world = self.world
        return [pending for pending in world.pending_output if ("sync", pending.node) not in world.paused]

    # --- Commands ----------------------------------------------------------------------

    def _cluster(self, args: list[str]) -> list[str]:
        if self._runner is not None:
            raise ScenarioError(_("'cluster' may appear only once, as the first command"))
        values: dict[str, str] = {}
        for arg in args:
            key, equals, value = arg.partition("=")
            if not equals or key not in (*CLUSTER_KEYS, *TIMER_KEYS):
                raise ScenarioError(_("invalid cluster setting {setting!r}; expected key=value with key one of "
                                      "{keys}").format(setting=arg, keys=", ".join(CLUSTER_KEYS + TIMER_KEYS)))
            values[key] = value

        numbers = {key: _setting(key, value) for key, value in values.items() if key != "bugs"}
        known_bugs = [bug.value for bug in Bug]
        for name in values.get("bugs", "").split(","):
            if name.strip() and name.strip() not in known_bugs:
                raise ScenarioError(_("unknown bug {bug!r}; known bugs: {known}").format(
                    bug=name.strip(), known=", ".join(known_bugs)))
        bugs = parse_bugs(values.get("bugs", ""))
        try:
            timers = Timers(**{key: numbers[key] for key in TIMER_KEYS if key in numbers})
        except TimersError as error:
            raise ScenarioError(describe_timers_error(error)) from None
        config = SimConfig(
            sync=numbers.get("sync", 3),
            store=numbers.get("store", 2),
            clients=numbers.get("clients", 1),
            messages=numbers.get("messages", 2),
            bugs=bugs,
            window=numbers.get("window", 4),
            timers=timers,
            liveness=False,
        )
        seed = numbers.get("seed", 0)
        self._runner = Runner(config, seed)
        self.world.keep_events = True

        lines = [
            f"{plural(config.sync, 'sync node')}, {plural(config.store, 'store node')}, "
            f"{plural(config.clients, 'client')} with {plural(config.messages, 'message')} each, seed {seed}"
        ]
        if bugs:
            lines.append("bugs: " + ", ".join(sorted(bug.value for bug in bugs)))
        lines += [f"in flight: {describe_packet(packet)}" for packet in self.world.network]
        return lines

    def _tick(self, tokens: list[str]) -> list[str]:
        args, count = split_count(tokens[1:])
        if args == ["all"]:
            return self._tick_all(count or 1)
        if "until" in args:
            position = args.index("until")
            if count is not None or position != len(args) - 2:
                raise ScenarioError(_("expected 'tick sync N until ROLE'"))
            role = args[-1]
            if role not in SYNC_ROLES:
                raise ScenarioError(_("invalid role {role!r}; expected one of {roles}").format(
                    role=role, roles=", ".join(SYNC_ROLES)))
            return self._tick_until(self._node(args[:position], ("sync",)), SYNC_ROLES[role])

        address = self._node(args)
        if not self._runnable(address):
            return [f"{self._why_not(address)}: it cannot tick"]
        lines: list[str] = []
        for number in range(1, (count or 1) + 1):
            lines += _prefixed(f"tick {number}: ", self._tick_once(address))
        return lines

    def _tick_until(self, address: Address, role: Role) -> list[str]:
        if not self._runnable(address):
            return [f"{self._why_not(address)}: it cannot tick"]
        limit = UNTIL_TIMEOUTS * self.world.timers.election_timeout_max
        lines: list[str] = []
        for number in range(1, limit + 1):
            lines += _prefixed(f"tick {number}: ", self._tick_once(address))
            sync = self.world.sync[address[1]]
            assert sync is not None
            if sync.role is role:
                return [*lines, f"{format_address(address)} is {role.value} after {plural(number, 'tick')}"]
        return [*lines, f"{format_address(address)} is not {role.value} after {plural(limit, 'tick')}"]

    def _tick_all(self, count: int) -> list[str]:
        world = self.world
        addresses = (
            [("sync", node) for node in world.sync_ids]
            + [("store", node) for node in world.store_ids]
            + [("client", client) for client in world.client_ids]
        )
        lines: list[str] = []
        for number in range(1, count + 1):
            for address in addresses:
                if self._runnable(address):
                    lines += _prefixed(f"tick {number}: ", self._tick_once(address))
        return lines or [f"ticked every running node {plural(count, 'time')}"]

    def _rounds(self, tokens: list[str]) -> list[str]:
        count = parse_count(tokens[1]) if len(tokens) == 2 else None
        if count is None:
            raise ScenarioError(_("expected 'rounds N' with N from 1 to {high}").format(high=MAX_COUNT))
        world = self.world
        lines: list[str] = []
        for number in range(1, count + 1):
            prefix = f"round {number}: "
            for packet in self._deliverable():
                lines += _prefixed(prefix, self._step(_deliver_event(packet)).lines)
            for pending in self._completable():
                lines += _prefixed(prefix, self._step(SimEvent("output", node=("sync", pending.node),
                                                               seq=pending.seq)).lines)
            addresses = (
                [("sync", node) for node in world.sync_ids]
                + [("store", node) for node in world.store_ids]
                + [("client", client) for client in world.client_ids]
            )
            for address in addresses:
                if self._runnable(address):
                    lines += _prefixed(prefix, self._step(SimEvent("tick", node=address)).lines)
        return [*lines, f"ran {plural(count, 'round')}"]

    def _deliver(self, tokens: list[str]) -> list[str]:
        if len(tokens) >= 2 and tokens[1] == "all":
            if len(tokens) == 2:
                return self._deliver_all(None)
            if tokens[2] != "except":
                raise ScenarioError(_("expected 'deliver all' or 'deliver all except FROM -> TO [Type]'"))
            return self._deliver_all(parse_selector(tokens[3:]))

        args, count = split_count(tokens[1:])
        selector = parse_selector(args)
        matched = [packet for packet in self.world.network if selector.matches(packet)][:count]
        if not matched:
            return [f"no message in flight matches {selector}"]
        lines: list[str] = []
        for packet in matched:
            if packet.target in self.world.paused:
                lines.append(f"cannot deliver {describe_packet(packet)}: {format_address(packet.target)} is paused")
                continue
            lines += self._deliver_packet(packet)
        return lines

    def _deliver_all(self, exclude: Selector | None) -> list[str]:
        lines: list[str] = []
        steps = 0
        while steps < MAX_SETTLE_STEPS:
            packets = self._deliverable(exclude)
            outputs = self._completable()
            if not packets and not outputs:
                break
            for packet in packets:
                lines += self._deliver_packet(packet)
            for pending in outputs:
                lines += self._complete_output(pending)
            steps += len(packets) + len(outputs)
        else:
            lines.append(f"stopped after {steps} steps: the cluster did not settle")

        if not lines:
            lines.append("nothing to deliver")
        left = len(self.world.network)
        if left:
            lines.append(f"still in flight: {plural(left, 'message')} (held back or to paused nodes)")
        return lines

    def _drop_or_duplicate(self, tokens: list[str]) -> list[str]:
        op = tokens[0]
        args, count = split_count(tokens[1:])
        selector = parse_selector(args)
        matched = [packet for packet in self.world.network if selector.matches(packet)][:count]
        if not matched:
            return [f"no message in flight matches {selector}"]
        lines: list[str] = []
        for packet in matched:
            lines.append(f"{op} {describe_packet(packet)}")
            lines += self._step(SimEvent(op, source=packet.source, target=packet.target, seq=packet.seq)).lines
        return lines

    def _complete(self, tokens: list[str]) -> list[str]:
        args, count = split_count(tokens[1:])
        if not args or args[0] != "output":
            raise ScenarioError(_("expected 'complete output all' or 'complete output sync N'"))
        world = self.world
        if args[1:] == ["all"]:
            candidates = list(world.pending_output)
        else:
            address = self._node(args[1:], ("sync",))
            candidates = [pending for pending in world.pending_output if pending.node == address[1]]
        if not candidates:
            return ["no output operation pending"]
        lines: list[str] = []
        for pending in candidates[:count]:
            node = ("sync", pending.node)
            if node in world.paused:
                lines.append(f"cannot complete output operation {pending.seq} of {format_address(node)}: "
                             "it is paused")
                continue
            lines += self._complete_output(pending)
        return lines

    def _node_fault(self, tokens: list[str]) -> list[str]:
        op = tokens[0]
        address = self._node(tokens[1:], ("sync", "store"))
        world = self.world
        name = format_address(address)
        event = SimEvent(op, node=address)
        if not applicable(world, event):
            if address in world.paused:
                state = "paused"
            elif world.is_live(address):
                state = "running"
            else:
                state = "down"
            return [f"cannot {op} {name}: it is {state}"]

        report = self._step(event)
        role, node = address
        if op == "crash":
            first = f"{name} crashed"
            if role == "store":
                disk = world.store_disk[node]
                first += f"; its disk keeps log {len(disk.wal)}, commit {len(disk.backup)}"
        elif op == "restart":
            first = f"{name} restarted from its disk: " + self._node_summary(address)
        else:
            first = f"{name} {op}d"
        return [first, *report.lines]

    def _partition(self, tokens: list[str]) -> list[str]:
        text = " ".join(tokens[1:])
        group = tuple(self._node(part.split()) for part in text.split(",") if part.strip())
        if not group:
            raise ScenarioError(_("expected 'partition ADDR, ADDR ...'"))
        world = self.world
        event = SimEvent("partition", group=group)
        if not applicable(world, event):
            return ["cannot partition: a partition is already in place (heal it first)"]
        lost = world.lost_to_partition
        lines = self._step(event).lines
        names = ", ".join(format_address(address) for address in group)
        return [f"cut {{{names}}} off from the other nodes; "
                f"{plural(world.lost_to_partition - lost, 'message')} in flight lost", *lines]

    def _heal(self, tokens: list[str]) -> list[str]:
        if len(tokens) != 1:
            raise ScenarioError(_("expected 'heal'"))
        if not self.world.partition:
            return ["no partition to heal"]
        return ["healed the partition", *self._step(SimEvent("heal")).lines]

    def _status(self, tokens: list[str]) -> list[str]:
        if len(tokens) != 1:
            raise ScenarioError(_("expected 'status'"))
        world = self.world
        lines = [f"{format_address(('sync', node))}: {self._node_summary(('sync', node))}" for node in world.sync_ids]
        lines += [
            f"{format_address(('store', node))}: {self._node_summary(('store', node))}" for node in world.store_ids
        ]
        for client_id, client in world.clients.items():
            total = client.acked + len(client.in_flight) + len(client.queue)
            lines.append(f"client {client_id}: acknowledged {client.acked} of {total}, "
                         f"in flight {sorted(client.in_flight)}, target sync {client.target}")
        lines.append(f"output.txt: {plural(len(world.output), 'entry', 'entries')}, fence at term {world.fence}")
        for pending in world.pending_output:
            effect = pending.effect
            what = "fence" if isinstance(effect, FenceOutput) else "append"
            lines.append(f"pending output: {what} of sync {pending.node} (term {effect.term})")
        return lines

    def _node_summary(self, address: Address) -> str:
        world = self.world
        role, node = address
        paused = " (paused)" if address in world.paused else ""
        if role == "sync":
            sync = world.sync[node]
            if sync is None:
                disk = world.sync_disk[node]
                term = disk["term"] if disk else 0
                return f"down, term {term} on disk"
            config = sync.config
            text = (f"{sync.role.value}, term {sync.term}, leader {sync.leader_id or 'none'}, "
                    f"epoch {config.epoch} (primary {config.primary}, backups {list(config.backups)}")
            text += f", joining {list(config.joining)})" if config.joining else ")"
            return text + paused
        store = world.store[node]
        if store is None:
            store_disk = world.store_disk[node]
            return f"down, log {len(store_disk.wal)}, commit {len(store_disk.backup)} on disk"
        status = store.status()
        return (f"{status.role}, epoch {store.epoch}, log {len(store.log)}, commit {store.commit}, "
                f"synced epoch {store.synced_epoch}{paused}")

    def _output(self, tokens: list[str]) -> list[str]:
        if len(tokens) != 1:
            raise ScenarioError(_("expected 'output'"))
        entries = self.world.output
        if not entries:
            return ["output.txt is empty"]
        return [
            f"{entry.seq}: term {entry.term}, lamport {entry.lamport}, client {entry.client_id} "
            f"request {entry.request_id}, {entry.text!r}"
            for entry in entries
        ]

    def _network(self, tokens: list[str]) -> list[str]:
        if len(tokens) != 1:
            raise ScenarioError(_("expected 'network'"))
        world = self.world
        if not world.network:
            return ["no messages in flight"]
        return [
            describe_packet(packet) + (" (target paused)" if packet.target in world.paused else "")
            for packet in world.network
        ]

    def _check(self, tokens: list[str]) -> list[str]:
        if tokens[1:] != ["invariants"]:
            raise ScenarioError(_("expected 'check invariants'"))
        found = self.world.check_invariants()
        if not found:
            return [f"all {len(INVARIANTS)} invariants hold"]
        return [f"{name} violated: {'; '.join(found[name])}" for name in INVARIANTS if name in found]


def _deliver_event(packet: Packet) -> SimEvent:
    return SimEvent("deliver", source=packet.source, target=packet.target, seq=packet.seq)


def _prefixed(prefix: str, lines: Sequence[str]) -> list[str]:
    return [prefix + line.strip() for line in lines]


def _setting(key: str, text: str) -> int:
    """Parse the value of a numeric `cluster` setting and check it against SETTING_RANGES."""
    low, high = SETTING_RANGES[key]
    value: int | None
    try:
        value = int(text)
    except ValueError:  # not an integer, or more digits than int() parses
        value = None
    if value is None or not low <= value <= high:
        raise ScenarioError(_("invalid {key}={value}; expected an integer from {low} to {high}").format(
            key=key, value=text, low=low, high=high))
    return value


# --- Command line ---------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    """Check scenario files against their expected output, or rewrite it; exit 1 on a mismatch."""
    parser = argparse.ArgumentParser(
        prog="python -m cluster.sim.scenario",
        description=_("Run scenario files of the simulator and compare each command's output with the file."),
    )
    parser.add_argument("files", nargs="+", type=Path, help=_("scenario files"))
    parser.add_argument("--rewrite", action="store_true", help=_("replace the expected output with the actual one"))
    args = parser.parse_args(argv)
    logging.getLogger("cluster.core").setLevel(logging.CRITICAL)

    failed = False
    for path in args.files:
        try:
            text = path.read_text(encoding="utf-8")
            if args.rewrite:
                path.write_text(rewrite_scenario(text), encoding="utf-8")
                print(_("{path}: rewritten").format(path=path))
                continue
            mismatches = find_mismatches(text)
        except (OSError, ScenarioError) as error:
            print(f"{path}: {error}", file=sys.stderr)
            failed = True
            continue
        for mismatch in mismatches:
            print(f"{path}: {mismatch.describe()}\n")
        failed = failed or bool(mismatches)
        if not mismatches:
            print(_("{path}: ok").format(path=path))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
