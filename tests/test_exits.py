"""Detection of a paused process from its state in /proc."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest

from cluster.exits import is_paused
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
