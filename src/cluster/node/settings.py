"""Settings of one node process, from command-line flags or environment variables.

The environment names follow the container layout: `ID`, `PORT` (the
client-facing port), `CLUSTER_PORT` (the peer port), `SYNC_NODES` and
`STORE_NODES` (comma-separated `host:port:cluster_port`, entry i is node
i + 1), `DATA_DIR`. Without `ID`, a Kubernetes pod takes its id from the
ordinal in `POD_NAME` (`sync-0` is node 1) and a Job pod from
`JOB_COMPLETION_INDEX` (index 0 is client 1). Sync and store nodes read the
cluster key ring from `CLUSTER_KEY_FILE` or `CLUSTER_KEY` (see
`resolve_key_ring`).
"""

from __future__ import annotations

import os
import re
import signal
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from cluster.core.bugs import Bug, parse_bugs
from cluster.error_text import describe_os_error
from cluster.i18n import _, ngettext
from cluster.net.auth import KeyRing, generate_key, load_key_file, parse_keys, write_key_file

DEFAULT_DATA_DIR = Path("shared_data")
# The key file in the data directory that `cluster run` writes, and that a
# node reads (or creates) when neither CLUSTER_KEY_FILE nor CLUSTER_KEY is set.
KEY_FILE_NAME = "cluster.key"


class SettingsError(ValueError):
    """A node setting is missing or invalid; the message names the value and the fix."""


@dataclass(frozen=True, slots=True)
class NodeAddress:
    host: str
    port: int  # client-facing port
    cluster_port: int  # peer port

    def __str__(self) -> str:
        return f"{self.host}:{self.port}:{self.cluster_port}"


@dataclass(frozen=True, slots=True)
class NodeSettings:
    role: str  # "sync", "store" or "client"
    node_id: int
    sync_nodes: tuple[NodeAddress, ...]
    store_nodes: tuple[NodeAddress, ...]
    data_dir: Path = DEFAULT_DATA_DIR
    bind_host: str = "0.0.0.0"
    port: int = 0
    cluster_port: int = 0
    bugs: frozenset[Bug] = frozenset()
    seed: int | None = None
    keys: KeyRing | None = None  # sync and store nodes only; clients hold no key
    # Sync and store nodes: write a `send` or `recv` event for every peer message.
    trace_messages: bool = False
    # Client only.
    texts: tuple[str, ...] = field(default=())
    window: int = 32
    rate: float | None = None  # new messages per second; None sends as fast as the window allows


def parse_port(value: str, name: str) -> int:
    try:
        port = int(value)
    except ValueError:
        raise SettingsError(_("{name} must be a port number from 1 to 65535, got {value!r}").format(
            name=name, value=value)) from None
    if not 1 <= port <= 65535:
        raise SettingsError(_("{name} must be a port number from 1 to 65535, got {value}").format(
            name=name, value=port))
    return port


def parse_node_list(value: str, name: str) -> tuple[NodeAddress, ...]:
    """Parse `host:port:cluster_port,...`; raise SettingsError naming a bad entry."""
    addresses = []
    for index, raw in enumerate(part.strip() for part in value.split(",")):
        if not raw:
            continue
        host, sep, ports = raw.rpartition(":")
        host2, sep2, port = host.rpartition(":")
        if not sep or not sep2 or not host2:
            raise SettingsError(_("{name} entry {index} is {value!r}; expected host:port:cluster_port, "
                                  "for example 127.0.0.1:5001:6001").format(name=name, index=index + 1, value=raw))
        addresses.append(
            NodeAddress(host2, parse_port(port, _("{name} entry {index} port").format(name=name, index=index + 1)),
                        parse_port(ports, _("{name} entry {index} cluster port").format(name=name, index=index + 1)))
        )
    if not addresses:
        raise SettingsError(_("{name} is empty; list every node as host:port:cluster_port, comma-separated").format(
            name=name))
    return tuple(addresses)


_ORDINAL = re.compile(r"-(\d+)$")


def resolve_node_id(flag: int | None, env: Mapping[str, str]) -> int:
    """Return the node id from the flag, `ID`, the `POD_NAME` ordinal or `JOB_COMPLETION_INDEX`."""
    if flag is not None:
        return _check_id(flag, "--id")
    if env.get("ID"):
        return _check_id(parse_int(env["ID"], "ID"), "ID")
    pod_name = env.get("POD_NAME", "")
    match = _ORDINAL.search(pod_name)
    if match:
        return int(match.group(1)) + 1
    if env.get("JOB_COMPLETION_INDEX"):
        return parse_int(env["JOB_COMPLETION_INDEX"], "JOB_COMPLETION_INDEX") + 1
    if pod_name:
        raise SettingsError(_("POD_NAME {value!r} has no ordinal suffix such as -0; set ID instead").format(
            value=pod_name))
    raise SettingsError(_("the node id is missing; pass --id N or set ID (ids start at 1)"))


def parse_int(value: str, name: str) -> int:
    """Parse the whole number of an environment variable; raise SettingsError naming it."""
    try:
        return int(value)
    except ValueError:
        raise SettingsError(_("{name} must be a whole number, got {value!r}").format(name=name, value=value)) from None


def parse_bugs_flag(text: str) -> frozenset[Bug]:
    """Parse the comma-separated names of `--bug`; raise SettingsError naming an unknown one."""
    known = [bug.value for bug in Bug]
    for raw in text.split(","):
        name = raw.strip()
        if name and name not in known:
            raise SettingsError(_("invalid --bug: unknown bug {name!r}; known bugs: {known}").format(
                name=name, known=", ".join(known)))
    return parse_bugs(text)


def _check_id(value: int, name: str) -> int:
    if value < 1:
        raise SettingsError(_("{name} must be 1 or more, got {value}").format(name=name, value=value))
    return value


def check_member(node_id: int, nodes: tuple[NodeAddress, ...], role: str) -> None:
    if node_id > len(nodes):
        raise SettingsError(ngettext(
            "{role} node id {node} has no entry in the {list} list of {count} node",
            "{role} node id {node} has no entry in the {list} list of {count} nodes",
            len(nodes)).format(role=role, node=node_id, list=f"{role.upper()}_NODES", count=len(nodes)))


def resolve_key_ring(flag: Path | None, env: Mapping[str, str], data_dir: Path) -> tuple[KeyRing, str | None]:
    """Load the cluster key ring and return it with a warning to print, or None.

    The sources, first match wins: the `--key-file` flag, then
    `CLUSTER_KEY_FILE`, then `CLUSTER_KEY`. A key file holds one hex key per
    line; `CLUSTER_KEY` holds hex keys separated by commas. In both, the first
    key signs and every key is accepted. With none of them set, the node uses
    `DATA_DIR/cluster.key`, creating it with a random key when it is missing,
    so nodes that share one data directory also share the key.
    """
    if flag is not None:
        return load_key_file(flag, "--key-file"), None

    file_value = env.get("CLUSTER_KEY_FILE")
    key_value = env.get("CLUSTER_KEY")
    # An empty variable is most often a secret that failed to load. Falling
    # back to a key of the data directory would start a node that no peer on
    # another machine accepts.
    if file_value is not None and not file_value.strip():
        raise SettingsError(_("CLUSTER_KEY_FILE is set but empty; set it to the path of a file of hex keys, "
                              "or unset it to use {path}").format(path=data_dir / KEY_FILE_NAME))
    if key_value is not None and not key_value.strip():
        raise SettingsError(_("CLUSTER_KEY is set but empty; set it to hex keys separated by commas, "
                              "or unset it to use {path}").format(path=data_dir / KEY_FILE_NAME))
    if file_value and key_value:
        raise SettingsError(_("both CLUSTER_KEY_FILE and CLUSTER_KEY are set; unset one of them"))
    if file_value:
        return load_key_file(Path(file_value), "CLUSTER_KEY_FILE"), None
    if key_value:
        return parse_keys(key_value, "CLUSTER_KEY", separator=","), None

    path = data_dir / KEY_FILE_NAME
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
        created = not path.exists() and write_key_file(path, generate_key(), replace=False)
    except OSError as error:
        raise SettingsError(_("cannot create the key file {path}: {reason}; pass a --data-dir you can write to, "
                              "or set CLUSTER_KEY_FILE").format(path=path, reason=describe_os_error(error))) from None
    if created:
        warning = _("neither CLUSTER_KEY_FILE nor CLUSTER_KEY is set, so peers authenticate with the key file "
                    "{path} (created); nodes that do not share this data directory need CLUSTER_KEY_FILE")
    else:
        warning = _("neither CLUSTER_KEY_FILE nor CLUSTER_KEY is set, so peers authenticate with the key file "
                    "{path} (found); nodes that do not share this data directory need CLUSTER_KEY_FILE")
    warning = warning.format(path=path)
    return load_key_file(path, "the key file of the data directory"), warning


def env_path(env: Mapping[str, str], name: str, default: Path) -> Path:
    value = env.get(name)
    return Path(value) if value else default


def env_or(env: Mapping[str, str], name: str) -> str | None:
    value = env.get(name)
    return value if value else None


def environ() -> Mapping[str, str]:
    return os.environ


def stop_signals() -> tuple[signal.Signals, ...]:
    """Return the signals a node process stops on: SIGTERM, and SIGINT unless it is ignored.

    `cluster run` starts its nodes with SIGINT ignored, so that Ctrl-C reaches
    only the launcher, which stops the nodes with SIGTERM in order, store nodes
    last. A SIGINT handler installed here would undo that: every node would stop
    at once, and a node could take the launcher's SIGTERM while its event loop
    was closing, which prints a BrokenPipeError from the signal wakeup fd.
    """
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        return (signal.SIGTERM,)
    return (signal.SIGTERM, signal.SIGINT)
