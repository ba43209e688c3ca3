"""Detection of paused processes and of lock holders from /proc."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest

from cluster.exits import flock_holders, is_paused
from tests.e2e_helpers import wait_for

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="process states come from Linux /proc")


def test_is_paused_follows_stop_and_continue() -> None:
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        assert not is_paused(process.pid)

        process.send_signal(signal.SIGSTOP)
        wait_for(lambda: is_paused(process.pid) or None, 10, "the process to stop")

        process.send_signal(signal.SIGCONT)
        wait_for(lambda: not is_paused(process.pid) or None, 10, "the process to continue")
    finally:
        process.kill()
        process.wait()


def test_is_paused_false_for_ended_process() -> None:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()

    assert not is_paused(process.pid)


def test_flock_holders_names_holding_process(tmp_path: Path) -> None:
    lock = tmp_path / "output.lock"
    lock.touch()
    holder = subprocess.Popen(
        [sys.executable, "-c", "import fcntl, sys, time; f = open(sys.argv[1]); fcntl.flock(f, fcntl.LOCK_EX); "
         "print('locked', flush=True); time.sleep(60)", str(lock)],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline() == "locked\n"

        assert flock_holders(lock) == {holder.pid}
    finally:
        holder.kill()
        holder.wait()

    assert flock_holders(lock) == set()


def test_flock_holders_empty_for_missing_file(tmp_path: Path) -> None:
    assert flock_holders(tmp_path / "missing.lock") == set()
