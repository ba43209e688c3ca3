"""Model-check the TLA+ spec in spec/ with Apalache (in Docker) or TLC.

`make check` runs every invariant of every model configuration. `make
check-bug BUG=name` runs the configuration with one deliberate bug switched
on, and succeeds when the checker finds the violation. The command lines are built
by `apalache_command` and `tlc_command`, which the tests call without running
any checker.

Exit status:
  0  every check passed; for check-bug, the expected violation was found
  1  an invariant was violated; for check-bug, the bug was not caught
  2  a checker failed, or the arguments were invalid
  3  Docker is not available
  4  the TLC jar is missing
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SPEC_DIR = ROOT / "spec"
BUILD_DIR = ROOT / "build" / "spec"

# Apalache 0.47.2 (released December 2024), pinned so results repeat.
# NOTE: the image was never pulled here (no Docker engine); the tag follows
# the v-prefixed form of the project's release tags.
APALACHE_IMAGE = "ghcr.io/apalache-mc/apalache:v0.47.2"

# Apalache's exit status when it finds a counterexample.
# NOTE: not confirmed by a run here; any other non-zero status is reported
# as an error, with the log file to read.
APALACHE_VIOLATION_STATUS = 12

EXIT_OK = 0
EXIT_VIOLATION = 1
EXIT_ERROR = 2
EXIT_NO_DOCKER = 3
EXIT_NO_TLC = 4

# Where `make tla2tools` puts the TLC jar, relative to the repository root
# that make runs from (TLA2TOOLS_JAR in mk/spec.mk).
TLA2TOOLS_JAR = "build/spec/tla2tools.jar"

# Python enum values of cluster.core.bugs.Bug, mapped to the spec's bug names.
BUG_ALIASES = {
    "double_vote": "DoubleVote",
    "early_ack": "EarlyAck",
    "skip_epoch_check": "SkipEpochCheck",
    "no_fence": "NoFence",
}


@dataclass(frozen=True)
class ModelConfig:
    """One model configuration: spec/<name>.tla with spec/<name>.cfg."""

    name: str
    length: int  # Apalache's --length: the bound on behaviour length, in steps
    bug: str | None = None  # the deliberate bug this configuration switches on
    expected: str | None = None  # the invariant the bug must violate
    tlc_only: bool = False  # temporal properties, which only TLC checks here

    @property
    def tla(self) -> Path:
        return SPEC_DIR / f"{self.name}.tla"

    @property
    def cfg(self) -> Path:
        return SPEC_DIR / f"{self.name}.cfg"

    def invariants(self) -> list[str]:
        """Return the invariants that the .cfg file lists."""
        return cfg_names(self.cfg.read_text(encoding="utf-8"), INVARIANT_KEYWORDS)

    def properties(self) -> list[str]:
        """Return the temporal properties that the .cfg file lists."""
        return cfg_names(self.cfg.read_text(encoding="utf-8"), PROPERTY_KEYWORDS)


# Each bug configuration's length bound is the number of steps in the
# shortest counterexample TLC finds (12, 25, 23 and 30), plus two.
# NOTE: the bounds of MC_3x2 and MC_3x3 are a choice, not measured: a leader
# with a ready configuration takes about 13 steps, one committed write about
# 20, and Apalache's run time for these lengths is unknown.
CONFIGS: tuple[ModelConfig, ...] = (
    ModelConfig("MC_3x2", length=24),
    ModelConfig("MC_3x3", length=20),
    ModelConfig("MC_live", length=0, tlc_only=True),
)
BUG_CONFIGS: tuple[ModelConfig, ...] = (
    ModelConfig("MC_bug_DoubleVote", length=14, bug="DoubleVote",
                expected="ElectionSafetyInv"),
    ModelConfig("MC_bug_EarlyAck", length=27, bug="EarlyAck", expected="OutputPrefixInv"),
    ModelConfig("MC_bug_SkipEpochCheck", length=25, bug="SkipEpochCheck",
                expected="EpochFencingInv"),
    ModelConfig("MC_bug_NoFence", length=32, bug="NoFence", expected="EpochFencingInv"),
)


@dataclass(frozen=True)
class CheckResult:
    """One row of the result table."""

    config: str
    invariant: str
    result: str  # "ok", "violated" or "error"
    size: str  # distinct states (TLC) or the length bound (Apalache)
    seconds: float
    detail: str = ""  # counterexample file or error output


INVARIANT_KEYWORDS = frozenset({"INVARIANT", "INVARIANTS"})
PROPERTY_KEYWORDS = frozenset({"PROPERTY", "PROPERTIES"})


def cfg_invariants(text: str) -> list[str]:
    """Return the names listed under INVARIANT or INVARIANTS in a TLC .cfg text."""
    return cfg_names(text, INVARIANT_KEYWORDS)


def cfg_names(text: str, keywords: frozenset[str]) -> list[str]:
    """Return the names listed under any of `keywords` in a TLC .cfg text."""
    names: list[str] = []
    in_section = False
    for raw in text.splitlines():
        line = raw.split("\\*", 1)[0].strip()
        if not line:
            continue
        words = line.split()
        if words[0] in keywords:
            in_section = True
            names.extend(words[1:])
        elif words[0].isupper() and words[0] not in {"TRUE", "FALSE"}:
            in_section = False
        elif in_section:
            names.extend(words)
    return names


def find_bug_config(bug: str) -> ModelConfig:
    """Return the configuration of `bug`, given as spec name or Python enum value."""
    name = BUG_ALIASES.get(bug, bug)
    for config in BUG_CONFIGS:
        if config.bug == name:
            return config
    known = ", ".join(sorted({c.bug or "" for c in BUG_CONFIGS} | set(BUG_ALIASES)))
    raise ValueError(f"unknown bug {bug!r}; expected one of: {known}")


def apalache_command(
    config: ModelConfig,
    invariant: str,
    *,
    spec_dir: Path = SPEC_DIR,
    out_dir: Path = BUILD_DIR / "apalache",
    image: str = APALACHE_IMAGE,
    user: str | None = None,
) -> list[str]:
    """Build the docker command that checks one invariant of one configuration.

    The spec directory is mounted read-only; Apalache writes its logs and any
    counterexample under out_dir/<config>/<invariant>.
    """
    if user is None:
        user = f"{os.getuid()}:{os.getgid()}"
    run_dir = f"/out/{config.name}/{invariant}"
    return [
        "docker", "run", "--rm",
        "--user", user,
        "-v", f"{spec_dir.resolve()}:/var/apalache:ro",
        "-v", f"{out_dir.resolve()}:/out",
        "-w", "/var/apalache",
        image,
        "check",
        f"--config={config.name}.cfg",
        "--init=Init",
        "--next=Next",
        f"--inv={invariant}",
        f"--length={config.length}",
        f"--out-dir={run_dir}",
        f"--run-dir={run_dir}",
        f"{config.name}.tla",
    ]


def tlc_command(
    config: ModelConfig,
    jar: Path,
    *,
    workers: int = 2,
    meta_dir: Path = BUILD_DIR / "tlc",
) -> list[str]:
    """Build the java command that runs TLC on one configuration.

    TLC checks every invariant of the .cfg file in one breadth-first run.
    `-deadlock` turns deadlock checking off: a bounded model stops in states
    where no action is enabled, and those are not errors. TLC 2.15 looks for
    the -config file in the directory of the spec, so it gets the bare name.
    """
    return [
        "java", "-XX:+UseParallelGC",
        "-cp", str(jar),
        "tlc2.TLC",
        "-config", config.cfg.name,
        "-workers", str(workers),
        "-deadlock",
        "-metadir", str(meta_dir / config.name),
        str(config.tla),
    ]


def docker_problem() -> str | None:
    """Return why Docker cannot run containers here, or None when it can."""
    if shutil.which("docker") is None:
        return "no docker binary on PATH"
    try:
        probe = subprocess.run(
            ["docker", "info"], capture_output=True, text=True, timeout=30, check=False
        )
    except subprocess.TimeoutExpired:
        return "docker info timed out after 30 s"
    if probe.returncode != 0:
        message = (probe.stderr or probe.stdout).strip().splitlines()
        return f"no Docker engine answers docker info ({message[-1] if message else 'no output'})"
    return None


def find_counterexample(directory: Path) -> Path | None:
    """Return the first counterexample file Apalache wrote under directory."""
    for pattern in ("violation*.tla", "counterexample*.tla", "*.itf.json"):
        found = sorted(directory.rglob(pattern))
        if found:
            return found[0]
    return None


def run_apalache(config: ModelConfig, invariant: str) -> CheckResult:
    """Check one invariant of one configuration with Apalache in Docker."""
    out_dir = BUILD_DIR / "apalache"
    run_dir = out_dir / config.name / invariant
    shutil.rmtree(run_dir, ignore_errors=True)
    run_dir.mkdir(parents=True, exist_ok=True)
    log = run_dir / "checker.log"

    start = time.monotonic()
    with log.open("w", encoding="utf-8") as sink:
        status = subprocess.run(
            apalache_command(config, invariant, out_dir=out_dir),
            stdout=sink, stderr=subprocess.STDOUT, check=False,
        ).returncode
    seconds = time.monotonic() - start

    size = f"length {config.length}"
    if status == 0:
        return CheckResult(config.name, invariant, "ok", size, seconds)
    if status == APALACHE_VIOLATION_STATUS:
        trace = find_counterexample(run_dir)
        return CheckResult(config.name, invariant, "violated", size, seconds, str(trace or log))
    return CheckResult(config.name, invariant, "error", size, seconds,
                       f"exit status {status}, see {log}")


VIOLATED = re.compile(r"Error: Invariant (\w+) is violated")
TEMPORAL_VIOLATED = "Error: Temporal properties were violated."
DISTINCT = re.compile(r"([\d,]+) distinct states found")


def run_tlc(config: ModelConfig, jar: Path, workers: int) -> list[CheckResult]:
    """Run TLC on one configuration; return one row per invariant and property."""
    meta_dir = BUILD_DIR / "tlc"
    meta_dir.mkdir(parents=True, exist_ok=True)
    log = meta_dir / f"{config.name}.out"

    start = time.monotonic()
    completed = subprocess.run(
        tlc_command(config, jar, workers=workers, meta_dir=meta_dir),
        capture_output=True, text=True, check=False,
    )
    seconds = time.monotonic() - start
    log.write_text(completed.stdout + completed.stderr, encoding="utf-8")

    counts = DISTINCT.findall(completed.stdout)
    size = f"{counts[-1]} states" if counts else "?"
    violated = VIOLATED.search(completed.stdout)
    temporal = TEMPORAL_VIOLATED in completed.stdout
    rows: list[CheckResult] = []
    for name in config.invariants() + config.properties():
        is_property = name in config.properties()
        if completed.returncode == 0:
            rows.append(CheckResult(config.name, name, "ok", size, seconds))
        elif violated or temporal:
            # TLC stops at the first violation: the other names were not
            # checked to the end.
            hit = (is_property and temporal) or (violated is not None
                                                 and violated.group(1) == name)
            result = "violated" if hit else "not reached"
            rows.append(CheckResult(config.name, name, result, size, seconds, str(log)))
        else:
            rows.append(CheckResult(config.name, name, "error", size, seconds,
                                    f"exit status {completed.returncode}, see {log}"))
    return rows


def print_table(rows: Sequence[CheckResult]) -> None:
    """Print the results as an aligned table."""
    header = ("configuration", "invariant", "result", "states or steps", "time")
    lines = [header] + [
        (r.config, r.invariant, r.result, r.size, f"{r.seconds:.1f} s") for r in rows
    ]
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    for line in lines:
        print("  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)))
    for r in rows:
        if r.detail:
            print(f"{r.config} {r.invariant}: {r.detail}")


def make_command(command: str, bug: str | None) -> str:
    """Return the make command line that runs `command`, for the hints that suggest rerunning it."""
    if command == "check-bug":
        return f"make check-bug BUG={bug}"
    return "make check"


def run_configs(
    configs: Sequence[ModelConfig], checker: str, jar: Path | None, workers: int, rerun: str
) -> list[CheckResult] | int:
    """Check `configs` and return the rows, or an exit status when no checker can run.

    `rerun` is the make command line the user ran. When Docker is missing,
    the printed hint repeats it with TLC as the checker.
    """
    rows: list[CheckResult] = []
    if checker == "apalache":
        problem = docker_problem()
        if problem is not None:
            print(f"Docker is not available: {problem}; install Docker, or fetch TLC with "
                  f"`make tla2tools` and run `{rerun} CHECKER=tlc TLA2TOOLS={TLA2TOOLS_JAR}`.")
            return EXIT_NO_DOCKER
        for config in configs:
            if config.tlc_only:
                rows.append(CheckResult(config.name, ", ".join(config.properties()),
                                        "skipped", "-", 0.0,
                                        "temporal properties: run with CHECKER=tlc"))
                continue
            invariants = [config.expected] if config.expected else config.invariants()
            for invariant in invariants:
                rows.append(run_apalache(config, invariant))
        return rows

    if jar is None or not jar.is_file():
        print(f"TLC jar not found: {jar or 'TLA2TOOLS is not set'}; "
              "set TLA2TOOLS=/path/to/tla2tools.jar (`make tla2tools` fetches one).")
        return EXIT_NO_TLC
    for config in configs:
        rows.extend(run_tlc(config, jar, workers))
    return rows


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["check", "check-bug"])
    parser.add_argument("bug", nargs="?", help="for check-bug: DoubleVote, early_ack, ...")
    parser.add_argument("--checker", choices=["apalache", "tlc"], default="apalache",
                        help="model checker to run (default: apalache in Docker)")
    parser.add_argument("--tla2tools", type=Path, default=None,
                        help="path to tla2tools.jar, for --checker=tlc")
    parser.add_argument("--workers", type=int, default=2, help="TLC worker threads")
    parser.add_argument("--config", action="append", default=[],
                        help="check only this configuration (repeatable)")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    jar: Path | None = args.tla2tools

    if args.command == "check-bug":
        if not args.bug:
            print("check-bug needs a bug name, e.g. `make check-bug BUG=DoubleVote`.")
            return EXIT_ERROR
        try:
            config = find_bug_config(args.bug)
        except ValueError as error:
            print(error)
            return EXIT_ERROR
        outcome = run_configs([config], args.checker, jar, args.workers,
                              make_command(args.command, args.bug))
        if isinstance(outcome, int):
            return outcome
        print_table(outcome)
        caught = any(r.invariant == config.expected and r.result == "violated" for r in outcome)
        if caught:
            print(f"{config.bug}: expected violation of {config.expected} found.")
            return EXIT_OK
        print(f"{config.bug}: no violation of {config.expected} found; the bug was not caught.")
        return EXIT_VIOLATION

    configs = list(CONFIGS)
    if args.config:
        known = {c.name: c for c in CONFIGS + BUG_CONFIGS}
        missing = [name for name in args.config if name not in known]
        if missing:
            print(f"unknown configuration {', '.join(missing)}; expected one of: "
                  f"{', '.join(sorted(known))}")
            return EXIT_ERROR
        configs = [known[name] for name in args.config]
    outcome = run_configs(configs, args.checker, jar, args.workers,
                          make_command(args.command, args.bug))
    if isinstance(outcome, int):
        return outcome
    print_table(outcome)
    if any(r.result == "error" for r in outcome):
        return EXIT_ERROR
    if any(r.result == "violated" for r in outcome):
        return EXIT_VIOLATION
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
