"""The ways a node process of a local run ends when the run did not stop it.

A node ends for one of two kinds of reasons:

- a crash: one of its tasks raised (exit code 1), a data file was damaged
  (exit code 2), or the process died of a fault of its own, such as
  SIGSEGV or SIGABRT. A crash is a bug or damaged data, so the run fails;
- a stop from outside: another process sent it SIGKILL, SIGTERM, SIGINT,
  SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2 or SIGALRM, such as a student's
  `kill -9` in the lab or the kernel's out-of-memory killer. A node that shuts down cleanly exits with
  code 0, which it does only after a stop signal. The cluster must survive
  such a stop like any other failure, so the run reports it and goes on.

A node can also be paused from outside (`kill -STOP`) and left paused. It
has not ended, and the run resumes it before stopping it, but the summary
names it, because the node took no part in the run after the pause. A
sync node paused while it held the lock on `output.lock` keeps the lock,
and no later leader can append to `output.txt` until it resumes.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

from cluster.i18n import _

# Signals that people, supervisors and the kernel send to stop a process, as
# opposed to the ones a process raises on itself when it fails. A node never
# sends itself the user signals or sets an alarm, so those came from outside too.
OUTSIDE_SIGNALS = frozenset({signal.SIGKILL, signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT,
                             signal.SIGUSR1, signal.SIGUSR2, signal.SIGALRM})

Exit = tuple[str, int, int | None]  # role, node id, exit code (negative: the signal that ended it)


def stopped_from_outside(code: int | None) -> bool:
    """Return True when exit code `code` means a signal from outside the node ended it."""
    if code is None:
        return False
    if code == 0:
        return True  # a node exits 0 only after it handled SIGTERM or SIGINT
    return code < 0 and -code in OUTSIDE_SIGNALS


def crashes(exited: list[Exit]) -> list[Exit]:
    """Return the exits of `exited` that were crashes of the node itself."""
    return [item for item in exited if not stopped_from_outside(item[2])]


def outside_stops(exited: list[Exit]) -> list[Exit]:
    """Return the exits of `exited` that a signal from outside the node caused."""
    return [item for item in exited if stopped_from_outside(item[2])]


def is_paused(pid: int) -> bool:
    """Return True when process `pid` is stopped by a signal or a debugger, from the state in /proc/<pid>/stat.

    Without /proc (outside Linux), or when the process is gone, it returns False.
    """
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False

    # The state follows the command name, which is in parentheses and may contain any character.
    state = stat[stat.rfind(")") + 2:][:1]
    return state in ("T", "t")


def flock_holders(path: Path) -> set[int]:
    """Return the ids of the processes that hold a flock on `path`, from /proc/locks.

    Without /proc (outside Linux), or when `path` is missing, it returns an empty set.
    """
    try:
        info = os.stat(path)
        locks = Path("/proc/locks").read_text(encoding="ascii", errors="replace")
    except OSError:
        return set()

    # A holder's line reads "1: FLOCK ADVISORY WRITE 4321 fe:00:2244939 0 EOF". A waiter's line has "->"
    # after the lock number, so its second field is not FLOCK.
    file_id = f"{os.major(info.st_dev):02x}:{os.minor(info.st_dev):02x}:{info.st_ino}"
    holders = set()
    for line in locks.splitlines():
        fields = line.split()
        if len(fields) >= 6 and fields[1] == "FLOCK" and fields[5] == file_id and fields[4].isdigit():
            holders.add(int(fields[4]))
    return holders


def describe_exit(code: int | None) -> str:
    """Return how a process ended, from its exit code; a negative code is the signal that ended it."""
    if code is None:
        return _("exit code unknown")
    if code == 0:
        return _("shut down after a stop signal")
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = str(-code)
        return _("ended by signal {name}").format(name=name)
    return _("exit code {code}").format(code=code)


def format_exits(exited: list[Exit]) -> str:
    """Return the nodes in `exited` and how each ended.

    For example: "sync 3 (exit code 1), store 2 (ended by signal SIGKILL)".
    """
    return ", ".join(f"{role} {node} ({describe_exit(code)})" for role, node, code in exited)


def log_files(exited: list[Exit]) -> str:
    """Return the log file of each node in `exited`, relative to the data directory."""
    return ", ".join(f"logs/{role}_{node}.log" for role, node, _code in exited)
