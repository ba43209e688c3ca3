"""Render a diagram's HTML page in headless Chromium and check the screenshot.

The test needs a Chromium binary (`/usr/bin/chromium` or `chromium` on PATH);
without one it is skipped. It installs nothing.
"""

from __future__ import annotations

import shutil
import struct
import subprocess
from pathlib import Path

import pytest

from cluster.cli import main
from cluster.sim.runner import SimConfig
from cluster.sim.scheduler import simulate
from cluster.sim.trace import write_trace

WIDTH = 1200
HEIGHT = 800
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _chromium() -> str | None:
    if Path("/usr/bin/chromium").is_file():
        return "/usr/bin/chromium"
    return shutil.which("chromium")


def _png_size(data: bytes) -> tuple[int, int]:
    """Return (width, height) from a PNG's IHDR chunk, which the format puts first."""
    assert data[:8] == PNG_SIGNATURE
    assert data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


@pytest.mark.skipif(_chromium() is None, reason="Chromium is not installed (/usr/bin/chromium or chromium on PATH)")
def test_html_renders_in_chromium(tmp_path: Path) -> None:
    trace = tmp_path / "trace.json"
    write_trace(trace, simulate(SimConfig(steps=600), seed=3))
    page = tmp_path / "diagram.html"
    assert main(["diagram", str(trace), "-o", str(page)]) == 0
    screenshot = tmp_path / "diagram.png"
    command = [
        str(_chromium()), "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run",
        f"--user-data-dir={tmp_path / 'profile'}", f"--screenshot={screenshot}",
        f"--window-size={WIDTH},{HEIGHT}", page.as_uri(),
    ]

    finished = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)

    assert finished.returncode == 0, finished.stderr[-2000:]
    data = screenshot.read_bytes()
    assert len(data) > 10_000  # a blank 1200x800 page is about 4.5 kB with Chromium 156
    assert _png_size(data) == (WIDTH, HEIGHT)
