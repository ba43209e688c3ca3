"""`cluster soak`: many seeded chaos runs in a row, with totals of what was lost, duplicated or reordered.

Round i runs `cluster run --chaos --seed SEED+i-1` in its own data directory
(DIR/round_<iii>, zero-padded), so a failing round can be replayed alone with its seed.
With `--network` and root, each round also runs one network-fault scenario
of `cluster.faultnet.scenarios`, chosen by the round's seed. A passing
round's directory is removed, and a failing one is kept for `cluster
verify` and `cluster diagram`.
"""

from __future__ import annotations

import io
import random
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from cluster.exits import format_exits
from cluster.i18n import _
from cluster.launcher import RunOptions, RunSummary, lock_data_dir, prepare_data_dir
from cluster.verify import Report

# The checks of `cluster verify` whose violations count as lost, duplicated and reordered messages.
LOST_CHECK = "AckedCommittedInv"
DUPLICATE_CHECK = "ExactlyOnce"
ORDER_CHECK = "ClientOrderInv"


@dataclass(slots=True)
class SoakTotals:
    rounds: int = 0
    runs: int = 0  # a round with --network has two runs: the chaos run and a network scenario
    acknowledged: int = 0
    lost: int = 0
    duplicated: int = 0
    reordered: int = 0
    failed_rounds: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.failed_rounds


def violation_counts(report: Report) -> tuple[int, int, int]:
    """Return the violations of `report` that are lost, duplicated and reordered messages."""
    counts = {check.name: len(check.violations) for check in report.checks}
    return counts.get(LOST_CHECK, 0), counts.get(DUPLICATE_CHECK, 0), counts.get(ORDER_CHECK, 0)


def run_soak(
    rounds: int, seed: int, base: RunOptions, out: TextIO, network: bool = False,
) -> SoakTotals:
    """Run `rounds` chaos rounds (and network scenarios with `network`), printing one line per round."""
    from cluster.run import run_cluster

    totals = SoakTotals()
    network_reason = None
    if network:
        from cluster.faultnet.netns import unavailable

        network_reason = unavailable()
        if network_reason is not None:
            out.write(_("network faults skipped: {reason}").format(reason=network_reason) + "\n")

    for index in range(1, rounds + 1):
        round_seed = seed + index - 1
        data_dir = base.data_dir / f"round_{index:03d}"
        options = RunOptions(
            sync=base.sync, store=base.store, clients=base.clients, messages=base.messages, data_dir=data_dir,
            seed=round_seed, chaos=True, fresh=True, window=base.window, rate=base.rate,
        )
        with lock_data_dir(data_dir):
            prepare_data_dir(options)
            summary = run_cluster(options, io.StringIO())
        totals.rounds += 1
        label = _("chaos seed {seed}").format(seed=round_seed)
        finished = summary.clients_finished and not summary.crashed
        _add_run(totals, label, summary.report, finished, data_dir, out, describe_faults(summary))

        if network and network_reason is None:
            from cluster.faultnet.scenarios import SCENARIOS, run_scenario

            name = random.Random(round_seed).choice(sorted(SCENARIOS))
            scenario_dir = base.data_dir / f"round_{index:03d}_{name}"
            result = run_scenario(name, scenario_dir, seed=round_seed)
            _add_run(totals, f"{name} seed {round_seed}", result.report, result.passed, scenario_dir, out,
                     "; ".join(result.notes))
    return totals


def describe_faults(summary: RunSummary) -> str:
    """Return the faults of a chaos round: the run's own, then the nodes that crashed, stopped or paused otherwise."""
    parts = [", ".join(summary.kills)] if summary.kills else []
    if summary.crashed:
        parts.append(_("stopped on their own: {nodes}").format(nodes=format_exits(summary.crashed)))
    if summary.stopped_outside:
        parts.append(_("stopped from outside: {nodes}").format(nodes=format_exits(summary.stopped_outside)))
    if summary.paused_outside:
        parts.append(_("paused from outside and not resumed: {nodes}").format(
            nodes=", ".join(f"{role} {node}" for role, node in summary.paused_outside)))
    return "; ".join(parts)


def _add_run(totals: SoakTotals, label: str, report: Report, finished: bool, data_dir: Path, out: TextIO,
             faults: str) -> None:
    lost, duplicated, reordered = violation_counts(report)
    totals.runs += 1
    totals.acknowledged += report.acknowledged
    totals.lost += lost
    totals.duplicated += duplicated
    totals.reordered += reordered
    passed = report.passed and finished
    if passed:
        shutil.rmtree(data_dir, ignore_errors=True)
    else:
        totals.failed_rounds.append(label)
    state = _("passed") if passed else _("FAILED, kept in {path}").format(path=data_dir)
    out.write(_("round {round}: {label}: {acked} acknowledged, {lost} lost, {duplicated} duplicated, "
                "{reordered} reordered; faults: {faults}; {state}").format(
        round=totals.rounds, label=label, acked=report.acknowledged, lost=lost, duplicated=duplicated,
        reordered=reordered, faults=faults or "-", state=state) + "\n")
    out.flush()


def format_totals(totals: SoakTotals) -> str:
    text = _("soak: {rounds} rounds ({runs} runs), {acked} acknowledged, {lost} lost, {duplicated} duplicated, "
             "{reordered} reordered").format(
        rounds=totals.rounds, runs=totals.runs, acked=totals.acknowledged, lost=totals.lost,
        duplicated=totals.duplicated, reordered=totals.reordered)
    if totals.failed_rounds:
        text += "\n" + _("failed rounds: {rounds}").format(rounds=", ".join(totals.failed_rounds))
    return text
