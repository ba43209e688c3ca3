"""Network-fault scenarios: each node in its own network namespace, links cut with nftables.

These tests need root, iproute2 and nftables (tools/netns_setup.sh installs
the two packages); without them they are skipped with the reason. All of
them take about a minute on a 2-core machine.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from cluster.faultnet.netns import FaultNet, unavailable
from cluster.faultnet.scenarios import SCENARIOS, run_scenario

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


def test_heal_after_interrupted_restore(monkeypatch: pytest.MonkeyPatch) -> None:
    """A restore interrupted inside its nft command is not retried by the heal() of the clean-up."""
    from cluster.faultnet import netns

    commands: list[list[str]] = []

    def run(args: list[str], stdin: str | None = None) -> None:
        commands.append(list(args))
        if "delete" in args and len([command for command in commands if "delete" in command]) == 1:
            raise KeyboardInterrupt

    monkeypatch.setattr(netns, "_run", run)
    net = FaultNet(["a", "b"], tag="cftest")
    net.cut("a", "b")

    with pytest.raises(KeyboardInterrupt):
        net.heal()
    net.heal()

    deletes = [command for command in commands if "delete" in command]
    assert len(deletes) == 1
    assert net.cuts == set()


def test_scenarios_interrupted_exits_130(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """Ctrl-C during a scenario ends with exit status 130 and one line, not a traceback."""
    from cluster.faultnet import netns, scenarios

    def interrupted(name: str, data_dir: Path, seed: int = 1, clients: int = 3) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(netns, "unavailable", lambda: None)
    monkeypatch.setattr(scenarios, "run_scenario", interrupted)

    status = scenarios.main(["leader-paused"])

    assert status == 130
    assert capsys.readouterr().err == "leader-paused: interrupted; its processes and network namespaces are removed\n"
