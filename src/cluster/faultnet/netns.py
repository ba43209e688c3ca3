"""Network namespaces joined by a bridge, with links cut and healed by nftables.

`FaultNet` creates one namespace per host and one more that holds a Linux
bridge; each host gets a veth pair whose outer end is a port of that bridge,
so no interface or address is ever added to the namespace the caller runs
in. Host addresses come from `SUBNET`, which exists only inside these
namespaces. Each host namespace has an nftables table with a set of
addresses it must not send to: `cut(a, b)` adds b's address to a's set, so a
one-way cut is one set element, and `heal()` empties the sets.

`close()` deletes every namespace this object created, which removes their
interfaces, rules and bridge with them. Processes started in a namespace
are the caller's to stop (see `cluster.faultnet.scenarios`).
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import uuid
from collections.abc import Iterable, Sequence

logger = logging.getLogger(__name__)

# A private /24 that exists only inside the namespaces created here. Hosts get
# .2 upwards; `extra_address` hands out .200 upwards for delay proxies.
SUBNET = "10.231.57"
PREFIX_LENGTH = 24
COMMAND_SECONDS = 10.0
NFT_TABLE = "faultnet"
NFT_SET = "blocked"


class FaultNetError(RuntimeError):
    """A command that builds or changes the namespaces failed; the message has its output."""


def unavailable() -> str | None:
    """Return why namespaces cannot be used here, or None when they can."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return "network namespaces need root; run as root to use them"
    for tool, package in (("ip", "iproute2"), ("nft", "nftables")):
        if shutil.which(tool) is None:
            return f"the {tool} command is missing; install {package} (tools/netns_setup.sh does)"
    probe = f"cfprobe-{uuid.uuid4().hex[:8]}"
    result = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True, timeout=COMMAND_SECONDS)
    if result.returncode != 0:
        return f"cannot create a network namespace: {result.stderr.strip() or result.returncode}"
    subprocess.run(["ip", "netns", "del", probe], capture_output=True, timeout=COMMAND_SECONDS)
    return None


def _run(args: Sequence[str], stdin: str | None = None) -> None:
    result = subprocess.run(list(args), input=stdin, capture_output=True, text=True, timeout=COMMAND_SECONDS)
    if result.returncode != 0:
        raise FaultNetError(f"{' '.join(args)} failed with exit status {result.returncode}: {result.stderr.strip()}")


class FaultNet:
    """Hosts in their own namespaces on one bridge, and the faults between them."""

    def __init__(self, hosts: Iterable[str], tag: str | None = None) -> None:
        self.hosts = list(hosts)
        if len(self.hosts) > 190:
            raise ValueError(f"at most 190 hosts fit the subnet, got {len(self.hosts)}")
        # Namespace names are global on the machine: the tag keeps runs apart.
        self.tag = tag or f"cf{uuid.uuid4().hex[:6]}"
        self.bridge_ns = f"{self.tag}-br"
        self.addresses = {host: f"{SUBNET}.{index}" for index, host in enumerate(self.hosts, start=2)}
        self.created: list[str] = []
        self.cuts: set[tuple[str, str]] = set()
        self._extra = 200

    def namespace(self, host: str) -> str:
        return f"{self.tag}-{host}"

    def exec_prefix(self, host: str) -> list[str]:
        """Return the command prefix that runs a program inside `host`'s namespace."""
        return ["ip", "netns", "exec", self.namespace(host)]

    def create(self) -> None:
        """Create the bridge namespace, then each host's namespace, veth pair, address and nftables set."""
        try:
            self._add_namespace(self.bridge_ns)
            _run(["ip", "-n", self.bridge_ns, "link", "add", "br0", "type", "bridge"])
            _run(["ip", "-n", self.bridge_ns, "link", "set", "br0", "up"])
            for index, host in enumerate(self.hosts, start=1):
                self._add_host(index, host)
        except BaseException:
            self.close()
            raise
        logger.info("created %d network namespaces with tag %s", len(self.created), self.tag)

    def _add_namespace(self, name: str) -> None:
        _run(["ip", "netns", "add", name])
        self.created.append(name)
        _run(["ip", "-n", name, "link", "set", "lo", "up"])

    def _add_host(self, index: int, host: str) -> None:
        namespace = self.namespace(host)
        self._add_namespace(namespace)
        outer = f"v{index}"
        _run(["ip", "-n", self.bridge_ns, "link", "add", outer, "type", "veth", "peer", "name", "eth0",
              "netns", namespace])
        _run(["ip", "-n", self.bridge_ns, "link", "set", outer, "master", "br0", "up"])
        _run(["ip", "-n", namespace, "addr", "add", f"{self.addresses[host]}/{PREFIX_LENGTH}", "dev", "eth0"])
        _run(["ip", "-n", namespace, "link", "set", "eth0", "up"])
        ruleset = (
            f"table inet {NFT_TABLE} {{\n"
            f"  set {NFT_SET} {{ type ipv4_addr; }}\n"
            f"  chain output {{ type filter hook output priority 0; policy accept; ip daddr @{NFT_SET} drop; }}\n"
            f"}}\n"
        )
        _run([*self.exec_prefix(host), "nft", "-f", "-"], stdin=ruleset)

    def extra_address(self, host: str) -> str:
        """Add one more address to `host`'s interface and return it (for a proxy in front of that host)."""
        address = f"{SUBNET}.{self._extra}"
        self._extra += 1
        _run(["ip", "-n", self.namespace(host), "addr", "add", f"{address}/{PREFIX_LENGTH}", "dev", "eth0"])
        return address

    def cut(self, source: str, target: str) -> None:
        """Drop every packet that `source` sends to `target` (one direction only)."""
        self._set_element("add", source, self.addresses[target])
        self.cuts.add((source, target))

    def restore(self, source: str, target: str) -> None:
        """Undo `cut(source, target)`.

        The cut is forgotten before the nft command runs. An interrupted
        command may already have deleted the element, and a second delete of
        it would fail and hide the interruption. A cut left in place that way
        goes with its namespace in `close()`.
        """
        if (source, target) in self.cuts:
            self.cuts.discard((source, target))
            self._set_element("delete", source, self.addresses[target])

    def partition(self, side: Iterable[str]) -> None:
        """Cut every host of `side` from every other host, both ways."""
        inside = set(side)
        for host in inside:
            for other in self.hosts:
                if other not in inside:
                    self.cut(host, other)
                    self.cut(other, host)

    def heal(self) -> None:
        """Remove every cut."""
        for source, target in sorted(self.cuts):
            self.restore(source, target)

    def _set_element(self, verb: str, host: str, address: str) -> None:
        _run([*self.exec_prefix(host), "nft", verb, "element", "inet", NFT_TABLE, NFT_SET, f"{{ {address} }}"])

    def close(self) -> None:
        """Delete every namespace created here, hosts first; log the ones that fail and go on."""
        for name in reversed(self.created):
            result = subprocess.run(["ip", "netns", "del", name], capture_output=True, text=True,
                                    timeout=COMMAND_SECONDS)
            if result.returncode != 0:
                logger.error("cannot delete network namespace %s: %s", name, result.stderr.strip())
        self.created.clear()
        self.cuts.clear()

    def __enter__(self) -> FaultNet:
        self.create()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
