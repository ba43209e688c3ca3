"""`cluster health`, the command that container health probes run every few seconds."""

from __future__ import annotations

import socket
import subprocess
import sys


def _cluster(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "cluster", *args], capture_output=True, text=True, timeout=60)


def test_cli_import_skips_other_commands() -> None:
    """Importing the CLI, as the `cluster` script does, loads neither the launcher, the simulator nor the diagram."""
    heavy = ("cluster.launcher", "cluster.sim.cli", "cluster.diagram")
    code = f"import sys, cluster.cli; print([name for name in {heavy!r} if name in sys.modules])"

    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_health_reports_closed_port() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]

    result = _cluster("health", "--port", str(port))

    assert result.returncode == 1
    assert f"node at 127.0.0.1:{port} did not answer" in result.stderr


def test_health_without_port_is_usage_error() -> None:
    result = _cluster("health")

    assert result.returncode == 2
    assert "usage: cluster health" in result.stderr
    assert "--port" in result.stderr


def test_health_rejects_port_out_of_range() -> None:
    result = _cluster("health", "--port", "0")

    assert result.returncode == 2
    assert result.stderr.strip() == "cluster: error: --port must be a port number from 1 to 65535, got 0"


def test_health_names_timeout_of_silent_node() -> None:
    """A node that accepts the connection but never replies is reported as a timeout with its length, not a blank."""
    with socket.create_server(("127.0.0.1", 0)) as silent:
        port = silent.getsockname()[1]

        result = _cluster("health", "--port", str(port))

    assert result.returncode == 1
    assert result.stderr.strip() == (
        f"node at 127.0.0.1:{port} did not answer: no reply within 1.0 s; check that a node runs there and that "
        "--host and --port give its client port")
