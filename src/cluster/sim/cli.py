"""The `cluster simulate` command: run, shrink, replay and explore schedules.

Exit status: 0 when no property broke, 1 when one did, 2 on invalid options
or an unreadable trace, and 3 when `--replay` finds no violation although
the trace recorded one.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path
from typing import Any, TextIO

from cluster.core.bugs import Bug
from cluster.i18n import _, format_message, ngettext
from cluster.node.settings import SettingsError, parse_bugs_flag
from cluster.sim.explore import EXPLORE_CONFIG, explore
from cluster.sim.report import format_violation, narrate
from cluster.sim.runner import FAULT_KINDS, MAX_SEED, SETTING_BOUNDS, SimConfig
from cluster.sim.scheduler import RunResult, simulate
from cluster.sim.shrink import DEFAULT_REPLAY_BUDGET, shrink
from cluster.sim.trace import TraceError, read_trace, replay, write_trace

MAX_DEPTH = 30

EXIT_OK = 0
EXIT_VIOLATION = 1
EXIT_USAGE = 2
# The trace recorded a violation and its replay found none, so the trace does
# not describe this code or the bug it shows is fixed. A replay that finds a
# violation exits EXIT_VIOLATION even when the trace recorded another one.
EXIT_NOT_REPRODUCED = 3


class UsageError(Exception):
    """An option value is invalid; the message names the value and the fix."""


def add_simulate_parser(subparsers: Any) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "simulate",
        help=_("run the protocol in a deterministic simulator with faults"),
        description=_("Run seeded random schedules of the real protocol code in one process, check the "
                      "invariants after every step, and shrink and print any schedule that breaks one."),
    )
    parser.add_argument("--seed", default="0", help=_("seed of the first run (default 0)"))
    parser.add_argument("--runs", default="1", help=_("number of seeds to try, from --seed on (default 1)"))
    parser.add_argument("--steps", default="3000", help=_("random steps per run, before the liveness rounds "
                                                          "(default 3000)"))
    parser.add_argument("--sync", default="3", help=_("sync nodes (default 3)"))
    parser.add_argument("--store", default="3", help=_("store nodes (default 3)"))
    parser.add_argument("--clients", default="2", help=_("clients (default 2)"))
    parser.add_argument("--messages", default="8", help=_("messages per client (default 8)"))
    parser.add_argument("--faults", default=",".join(FAULT_KINDS),
                        help=_("comma-separated fault kinds, or 'none' (default {default})").format(
                            default=",".join(FAULT_KINDS)))
    parser.add_argument("--bug", default="", help=_("comma-separated bug switches: {bugs}").format(
        bugs=", ".join(bug.value for bug in Bug)))
    parser.add_argument("--replay", metavar="FILE",
                        help=_("replay a trace file exactly and report its result; exit 3 when the trace recorded "
                               "a violation that the replay does not find"))
    parser.add_argument("--explore", action="store_true",
                        help=_("enumerate every schedule of a tiny cluster (3 sync, 2 store, 1 client, 1 message) "
                               "up to --depth"))
    parser.add_argument("--depth", default=None, help=_("exploration depth in steps (default 6; with --explore)"))
    parser.add_argument("--trace-out", metavar="FILE",
                        help=_("write the (shrunk) failing schedule as a JSON trace"))
    parser.add_argument("--no-shrink", action="store_true",
                        help=_("report the failing schedule without shrinking it"))
    parser.add_argument("--shrink-budget", default=str(DEFAULT_REPLAY_BUDGET),
                        help=_("maximum number of replays for one shrink (default {default})").format(
                            default=DEFAULT_REPLAY_BUDGET))
    return parser


def run_simulate(args: argparse.Namespace, out: TextIO | None = None, err: TextIO | None = None) -> int:
    out = out or sys.stdout
    err = err or sys.stderr
    # The report is the simulator's output; the nodes' own log lines would bury it.
    logging.getLogger("cluster.core").setLevel(logging.CRITICAL)
    try:
        if args.replay:
            return _replay(args, out)
        if args.explore:
            return _explore(args, out)
        if args.depth is not None:
            raise UsageError(_("--depth needs --explore"))
        return _simulate(args, out)
    except (UsageError, TraceError) as error:
        print(_("cluster simulate: error: {error}").format(error=error), file=err)
        return EXIT_USAGE


def _simulate(args: argparse.Namespace, out: TextIO) -> int:
    config = _config(args)
    runs = _integer(args.runs, "--runs", 1, 10**7)
    # The seeds run from --seed to --seed + runs - 1, and the largest is MAX_SEED.
    seed = _integer(args.seed, "--seed", 0, MAX_SEED + 1 - runs)
    budget = _integer(args.shrink_budget, "--shrink-budget", 0, 10**7)
    started = time.perf_counter()
    steps = 0
    for run_seed in range(seed, seed + runs):
        result = simulate(config, run_seed)
        steps += len(result.events)
        if result.violation is not None:
            print(_("seed {seed}: {name} violated after {steps} steps").format(
                seed=run_seed, name=result.violation.name, steps=result.violation.step), file=out)
            return _report_failure(result, args, out, budget)
    seconds = time.perf_counter() - started
    print(format_message(ngettext("no violation in {runs} run from seed {seed}: {steps} steps in {seconds:.1f} s "
                                  "({rate:.0f} steps/s)",
                                  "no violation in {runs} runs from seed {seed}: {steps} steps in {seconds:.1f} s "
                                  "({rate:.0f} steps/s)", runs), runs=runs, seed=seed, steps=steps, seconds=seconds,
                         rate=steps / max(seconds, 1e-9)), file=out)
    return EXIT_OK


def _report_failure(result: RunResult, args: argparse.Namespace, out: TextIO, budget: int) -> int:
    if not args.no_shrink:
        shrunk = shrink(result, budget)
        print(_("shrunk from {before} to {after} steps with {replays} replays").format(
            before=len(result.events), after=len(shrunk.result.events), replays=shrunk.replays), file=out)
        result = shrunk.result
    print("", file=out)
    for line in narrate(result):
        print(line, file=out)
    print("", file=out)
    for line in format_violation(result):
        print(line, file=out)
    if args.trace_out:
        write_trace(Path(args.trace_out), result)
        print(_("trace written to {path}; replay it with: cluster simulate --replay {path}").format(
            path=args.trace_out), file=out)
    return EXIT_VIOLATION


def _replay(args: argparse.Namespace, out: TextIO) -> int:
    if args.explore:
        raise UsageError(_("--replay and --explore cannot be combined; use one of them"))
    trace = read_trace(Path(args.replay))
    result = replay(trace.config, trace.seed, trace.events, trace.recovery_start, strict=True)
    for line in narrate(result):
        print(line, file=out)
    print("", file=out)
    for line in format_violation(result):
        print(line, file=out)
    recorded = trace.violation["name"] if trace.violation else None
    found = result.violation.name if result.violation else None
    if recorded != found:
        print(_replay_mismatch(recorded, found), file=out)
    if found is not None:
        return EXIT_VIOLATION
    return EXIT_OK if recorded is None else EXIT_NOT_REPRODUCED


def _replay_mismatch(recorded: str | None, found: str | None) -> str:
    # One whole sentence per case, so that a translation never joins fragments.
    if recorded is None:
        return _("note: the trace recorded no violation, the replay found {found}").format(found=found)
    if found is None:
        return _("note: the trace recorded {recorded}, the replay found none").format(recorded=recorded)
    return _("note: the trace recorded {recorded}, the replay found {found}").format(recorded=recorded, found=found)


def _explore(args: argparse.Namespace, out: TextIO) -> int:
    depth = _integer(args.depth if args.depth is not None else "6", "--depth", 1, MAX_DEPTH)
    bugs = _bugs(args.bug)
    config = SimConfig(**{**_fields(EXPLORE_CONFIG), "bugs": bugs})
    result = explore(config, depth)
    print(format_message(_("explored depth {depth}: {explored} states reached, {distinct} distinct, {seconds:.1f} s"),
                         depth=depth, explored=result.explored, distinct=result.distinct, seconds=result.seconds),
          file=out)
    if result.violation is None:
        print(_("no invariant violated"), file=out)
        return EXIT_OK
    for line in narrate(result.violation):
        print(line, file=out)
    for line in format_violation(result.violation):
        print(line, file=out)
    if args.trace_out:
        write_trace(Path(args.trace_out), result.violation)
    return EXIT_VIOLATION


def _fields(config: SimConfig) -> dict[str, Any]:
    return {name: getattr(config, name) for name in SimConfig.__dataclass_fields__}


def _config(args: argparse.Namespace) -> SimConfig:
    return SimConfig(
        sync=_integer(args.sync, "--sync", *SETTING_BOUNDS["sync"]),
        store=_integer(args.store, "--store", *SETTING_BOUNDS["store"]),
        clients=_integer(args.clients, "--clients", *SETTING_BOUNDS["clients"]),
        messages=_integer(args.messages, "--messages", *SETTING_BOUNDS["messages"]),
        steps=_integer(args.steps, "--steps", *SETTING_BOUNDS["steps"]),
        faults=_faults(args.faults),
        bugs=_bugs(args.bug),
    )


def _integer(text: str, option: str, low: int, high: int) -> int:
    message = _("invalid {option} {value}: expected an integer from {low} to {high}")
    try:
        value = int(text)
    except ValueError:
        raise UsageError(message.format(option=option, value=repr(text), low=low, high=high)) from None
    if not low <= value <= high:
        raise UsageError(message.format(option=option, value=value, low=low, high=high))
    return value


def _faults(text: str) -> frozenset[str]:
    if text.strip() in ("", "none"):
        return frozenset()
    kinds = {item.strip() for item in text.split(",") if item.strip()}
    unknown = sorted(kinds - set(FAULT_KINDS))
    if unknown:
        raise UsageError(_("invalid --faults value {unknown}: expected a comma-separated list of {kinds}, "
                           "or 'none'").format(unknown=", ".join(unknown), kinds=", ".join(FAULT_KINDS)))
    return frozenset(kinds)


def _bugs(text: str) -> frozenset[Bug]:
    try:
        return parse_bugs_flag(text)
    except SettingsError as error:
        raise UsageError(str(error)) from None


def main(argv: list[str] | None = None) -> int:
    """Run `simulate` on its own, for `python -m cluster.sim.cli`."""
    parser = argparse.ArgumentParser(prog="cluster")
    subparsers = parser.add_subparsers(dest="command", required=True)
    add_simulate_parser(subparsers)
    return run_simulate(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
