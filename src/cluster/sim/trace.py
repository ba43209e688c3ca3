"""Traces: a run written as JSON, and its exact replay.

Format (version 1), one JSON object:

    {
      "format": "cluster-sim-trace",
      "version": 1,
      "config": {"sync": 3, "store": 3, "clients": 2, "messages": 8, "steps": 3000,
                 "faults": [...], "window": 4, "fault_fraction": 0.5,
                 "liveness": true, "timers": {...}},
      "bugs": ["no_fence"],
      "seed": 7,
      "recovery_start": 812,          # index of the first liveness-round event, or null
      "violation": {"name": "OutputPrefixInv", "step": 640, "details": [...]},  # or null
      "events": [{"op": "tick", "node": "sync 1"},
                 {"op": "deliver", "from": "sync 1", "to": "sync 2", "n": 3}, ...]
    }

Event ops: `deliver`, `drop` and `duplicate` name a message by its link
("from", "to") and its per-link sequence number "n"; `output` completes the
"n"-th output operation of sync node "node"; `tick`, `crash`, `restart`,
`pause` and `resume` name a node; `partition` cuts "group" off from the
other nodes until `heal`; `tick_all` ticks every node once (one liveness
round ends with it). The seed fixes the nodes' own random choices
(election timeouts), so the events and the seed together fix the run.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cluster.core.bugs import Bug, parse_bugs
from cluster.error_text import describe_json_error, describe_os_error, describe_unicode_error, json_value_text
from cluster.i18n import _
from cluster.sim.events import SimEvent, applicable
from cluster.sim.liveness import LivenessMonitor
from cluster.sim.runner import INVARIANTS, LIVENESS_PROPERTIES, MAX_SEED, Runner, SimConfig, Violation
from cluster.sim.scheduler import RunResult
from cluster.sim.world import World

TRACE_FORMAT = "cluster-sim-trace"
TRACE_VERSION = 1


class TraceError(ValueError):
    """A trace file is invalid or does not match the code that replays it."""


def trace_to_json(result: RunResult) -> dict[str, Any]:
    return {
        "format": TRACE_FORMAT,
        "version": TRACE_VERSION,
        "config": result.config.to_json(),
        "bugs": sorted(bug.value for bug in result.config.bugs),
        "seed": result.seed,
        "recovery_start": result.recovery_start,
        "violation": result.violation.to_json() if result.violation else None,
        "events": [event.to_json() for event in result.events],
    }


def write_trace(path: Path, result: RunResult) -> None:
    path.write_text(json.dumps(trace_to_json(result), indent=1) + "\n", encoding="utf-8")


@dataclass(frozen=True, slots=True)
class Trace:
    config: SimConfig
    seed: int
    events: list[SimEvent]
    recovery_start: int | None
    violation: dict[str, Any] | None  # as recorded, to compare with the replay


def read_trace(path: Path) -> Trace:
    """Read a trace file; raise TraceError saying what is wrong with it."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise TraceError(_("cannot read trace {path}: {error}").format(path=path, error=describe_os_error(error))) \
            from None
    except UnicodeDecodeError as error:
        raise TraceError(_("trace {path} is not valid JSON: {error}").format(
            path=path, error=describe_unicode_error(error))) from None
    except json.JSONDecodeError as error:
        raise TraceError(_("trace {path} is not valid JSON: {error}").format(
            path=path, error=describe_json_error(error))) from None
    except (RecursionError, ValueError):
        raise TraceError(_("trace {path} is not valid JSON: nested too deeply, or a number too long").format(
            path=path)) from None
    return parse_trace(data, str(path))


def parse_trace(data: Any, name: str = "trace") -> Trace:
    if not isinstance(data, dict) or data.get("format") != TRACE_FORMAT:
        raise TraceError(_("{name} is not a simulator trace (missing \"format\": \"{format}\")").format(
            name=name, format=TRACE_FORMAT))
    version = data.get("version")
    # JSON true loads as bool, which equals 1, so check the type before comparing.
    if not isinstance(version, int) or isinstance(version, bool):
        raise TraceError(_("{name} is invalid: \"version\" must be the integer {supported}, found {version}").format(
            name=name, supported=TRACE_VERSION, version=json_value_text(version)))
    if version != TRACE_VERSION:
        raise TraceError(_("{name} has trace version {version}; this simulator reads version {supported}").format(
            name=name, version=json_value_text(version), supported=TRACE_VERSION))
    _check_bug_names(data.get("bugs", []), name)
    events_json = data.get("events")
    if not isinstance(events_json, list):
        raise TraceError(_("{name} is invalid: \"events\" must be a list of events, found {events}").format(
            name=name, events=json_value_text(events_json)))
    try:
        bugs: frozenset[Bug] = parse_bugs(",".join(data.get("bugs", [])))
        config = SimConfig.from_json(data.get("config"), bugs)
        seed = _seed(data)
        events = [_event(index, item) for index, item in enumerate(events_json)]
        recovery_start = _recovery_start(data, len(events))
        violation = _violation(data)
    except (KeyError, TypeError, ValueError) as error:
        raise TraceError(_("{name} is invalid: {error}").format(name=name, error=error)) from None
    return Trace(config, seed, events, recovery_start, violation)


def _is_integer(value: Any) -> bool:
    # JSON true and false load as bool, which is a subclass of int.
    return isinstance(value, int) and not isinstance(value, bool)


def _seed(data: dict[str, Any]) -> int:
    if "seed" not in data:
        raise ValueError(_("\"seed\" is missing; expected an integer from 0 to {high}").format(high=MAX_SEED))
    seed = data["seed"]
    if not _is_integer(seed) or not 0 <= seed <= MAX_SEED:
        raise ValueError(_("\"seed\" must be an integer from 0 to {high}, found {value}").format(
            high=MAX_SEED, value=json_value_text(seed)))
    return int(seed)


def _event(index: int, item: Any) -> SimEvent:
    try:
        return SimEvent.from_json(item)
    except (KeyError, TypeError, ValueError) as error:
        raise ValueError(_("\"events[{index}]\": {error}").format(index=index, error=error)) from None


def _recovery_start(data: dict[str, Any], event_count: int) -> int | None:
    value = data.get("recovery_start")
    if value is None:
        return None
    if not _is_integer(value) or not 0 <= value <= event_count:
        raise ValueError(_("\"recovery_start\" must be null or an integer from 0 to {high} (the number of "
                           "events), found {value}").format(high=event_count, value=json_value_text(value)))
    return int(value)


def _violation(data: dict[str, Any]) -> dict[str, Any] | None:
    value = data.get("violation")
    if value is None:
        return None
    known = (*INVARIANTS, *LIVENESS_PROPERTIES)
    if not isinstance(value, dict) or value.get("name") not in known:
        raise ValueError(_("\"violation\" must be null or an object whose \"name\" is one of {known}, "
                           "found {value}").format(known=", ".join(known), value=json_value_text(value)))
    return value


def _check_bug_names(names: Any, trace_name: str) -> None:
    """Raise TraceError unless `names` is a list of known bug names.

    parse_bugs rejects unknown names too, but its error is English text
    that the catalog cannot translate.
    """
    if not isinstance(names, list) or not all(isinstance(item, str) for item in names):
        raise TraceError(_("{name} is invalid: \"bugs\" must be a list of bug names").format(name=trace_name))
    known = [bug.value for bug in Bug]
    for raw in names:
        bug = raw.strip()
        if bug and bug not in known:
            raise TraceError(_("{name} is invalid: unknown bug {bug!r}; known bugs: {known}").format(
                name=trace_name, bug=bug, known=", ".join(known)))


def replay(
    config: SimConfig,
    seed: int,
    events: list[SimEvent],
    recovery_start: int | None = None,
    strict: bool = True,
) -> RunResult:
    """Apply `events` to a fresh world, checking every invariant after each one.

    With `strict`, an event that cannot happen (its message is not in flight,
    its node is down) raises TraceError, because the trace then does not
    describe this code. Without it, such events are skipped and left out of
    the result, which is what shrinking needs. Events from `recovery_start`
    on are liveness rounds, and the liveness bounds are checked on them.
    """
    runner = Runner(config, seed)
    monitor = LivenessMonitor(config.timers)
    # Without the reorder fault, each link delivers in order, and so must a replay.
    fifo = "reorder" not in config.faults
    for index, event in enumerate(events):
        if recovery_start is not None and index == recovery_start:
            recovery_start = len(runner.events)
        if not applicable(runner.world, event) or (fifo and _overtakes(runner.world, event)):
            if strict:
                raise TraceError(_("event {step} ({event}) cannot happen in the replayed run; the trace was "
                                   "recorded with different code or was edited").format(
                                       step=index + 1, event=event.to_json()))
            continue
        if not runner.step(event):
            break
        if event.op == "tick_all" and recovery_start is not None:
            broken = monitor.after_round(runner.world)
            if broken is not None:
                runner.fail(*broken)
                break
    return RunResult(config, seed, runner.events, runner.violation, recovery_start)


def _overtakes(world: World, event: SimEvent) -> bool:
    """Return True when `event` delivers a message while an older one waits on its link."""
    if event.op != "deliver":
        return False
    return any(
        packet.source == event.source and packet.target == event.target and packet.seq < event.seq
        for packet in world.network
    )


def same_violation(first: Violation | None, second: Violation | None) -> bool:
    if first is None or second is None:
        return first is second
    return first.name == second.name
