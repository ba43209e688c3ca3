"""Network-fault scenarios: each node in its own network namespace, links cut with nftables.

These tests need root, iproute2 and nftables (tools/netns_setup.sh installs
the two packages); without them they are skipped with the reason. All of
them take about a minute on a 2-core machine.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from cluster.faultnet.netns import FaultNet, unavailable
from cluster.faultnet.scenarios import SCENARIOS, NetCluster, run_scenario
from tests.e2e_helpers import wait_for

pytestmark = pytest.mark.e2e

REASON = unavailable()
needs_netns = pytest.mark.skipif(REASON is not None, reason=f"network namespaces unavailable: {REASON}")


def namespaces(tag: str) -> set[str]:
    """Return the network namespaces whose names start with `tag`; other runs on the machine may have their own."""
    listing = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout
    names = {line.split()[0] for line in listing.splitlines() if line.strip()}
    return {name for name in names if name.startswith(f"{tag}-")}


@needs_netns
@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_scenario_verifies(name: str, tmp_path: Path) -> None:
    """The cluster survives the fault, every client finishes, `cluster verify` passes and no namespace is left."""
    result = run_scenario(name, tmp_path / "data")

    assert result.failed_checks == [], result.describe()
    assert result.passed
    assert result.acknowledged == result.sent
    assert result.namespace_tag
    assert namespaces(result.namespace_tag) == set()


@needs_netns
def test_net_cluster_reports_unkilled_exit(tmp_path: Path) -> None:
    """A node the scenario killed is expected to be down. One stopped from outside is reported with its status."""
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    with NetCluster(data_dir, sync=3, store=2, clients=1) as cluster:
        cluster.ready_leader()
        cluster.kill("store", 2)
        stopped = cluster.processes[("sync", 3)]
        os.kill(stopped.pid, signal.SIGTERM)
        stopped.wait(10)

        assert cluster.unexpected_exits() == [("sync", 3, 0)]


@needs_netns
def test_faultnet_cleans_up_on_error() -> None:
    """A FaultNet closed after an exception leaves no namespace behind."""
    net = FaultNet(["a", "b"])

    with pytest.raises(RuntimeError), net:
        assert net.namespace("a") in namespaces(net.tag)
        raise RuntimeError("scenario failed")

    assert namespaces(net.tag) == set()


@needs_netns
def test_cut_is_one_way() -> None:
    """cut(a, b) adds b to a's blocked set only; heal() empties it."""
    with FaultNet(["a", "b"]) as net:
        net.cut("a", "b")
        listing_a = subprocess.run([*net.exec_prefix("a"), "nft", "list", "set", "inet", "faultnet", "blocked"],
                                   capture_output=True, text=True, check=True).stdout
        listing_b = subprocess.run([*net.exec_prefix("b"), "nft", "list", "set", "inet", "faultnet", "blocked"],
                                   capture_output=True, text=True, check=True).stdout

        assert net.addresses["b"] in listing_a
        assert net.addresses["a"] not in listing_b

        net.heal()
        healed = subprocess.run([*net.exec_prefix("a"), "nft", "list", "set", "inet", "faultnet", "blocked"],
                                capture_output=True, text=True, check=True).stdout
        assert net.addresses["b"] not in healed


@needs_netns
def test_heal_after_interrupted_restore() -> None:
    """A restore interrupted right after its nft delete is not retried by the heal() of the clean-up."""
    from cluster.faultnet import netns

    real_run = netns._run
    deletes: list[list[str]] = []

    def interrupt_after_first_delete(args: list[str], stdin: str | None = None) -> None:
        real_run(args, stdin)
        if "delete" in args:
            deletes.append(list(args))
            if len(deletes) == 1:
                raise KeyboardInterrupt

    with FaultNet(["a", "b"]) as net:
        net.cut("a", "b")
        netns._run = interrupt_after_first_delete
        try:
            with pytest.raises(KeyboardInterrupt):
                net.heal()
            net.heal()
        finally:
            netns._run = real_run
        healed = subprocess.run([*net.exec_prefix("a"), "nft", "list", "set", "inet", "faultnet", "blocked"],
                                capture_output=True, text=True, check=True).stdout

    assert len(deletes) == 1
    assert net.cuts == set()
    assert net.addresses["b"] not in healed


def _scenario_tag(before: set[str]) -> str | None:
    """Return the tag of a scenario whose namespaces have all been created since `before`, or None."""
    listing = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout
    new = {line.split()[0] for line in listing.splitlines() if line.strip()} - before
    bridges = [name.removesuffix("-br") for name in new if name.endswith("-br")]
    # 5 sync and 3 store hosts, the clients' host and the bridge.
    return next((tag for tag in bridges if len(namespaces(tag)) == 10), None)


@needs_netns
def test_scenarios_interrupted_exits_130() -> None:
    """Ctrl-C during a scenario ends with exit status 130 and one line, and leaves no namespace behind."""
    listing = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout
    before = {line.split()[0] for line in listing.splitlines() if line.strip()}
    runner = subprocess.Popen([sys.executable, "-m", "cluster.faultnet.scenarios", "leader-paused"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        tag = wait_for(lambda: _scenario_tag(before), 60, "the scenario's network namespaces")
        os.killpg(runner.pid, signal.SIGINT)  # as a terminal sends Ctrl-C to the foreground process group
        _stdout, stderr = runner.communicate(timeout=60)
    finally:
        if runner.poll() is None:
            os.killpg(runner.pid, signal.SIGKILL)
            runner.wait()

    assert runner.returncode == 130, stderr
    assert stderr.splitlines()[-1] == "leader-paused: interrupted; its processes and network namespaces are removed"
    assert "Traceback" not in stderr
    assert namespaces(tag) == set()
