"""The `cluster` command line."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from cluster.core.bugs import Bug
from cluster.core.messages import MAX_TEXT_BYTES
from cluster.error_text import describe_json_error, describe_os_error, json_value_text
from cluster.files import DataFileError
from cluster.i18n import _, format_message, ngettext
from cluster.node.settings import (
    DEFAULT_DATA_DIR,
    NodeAddress,
    NodeSettings,
    SettingsError,
    check_member,
    parse_bugs_flag,
    parse_int,
    parse_node_list,
    parse_port,
    resolve_key_ring,
    resolve_node_id,
)
from cluster.status import SINGLE_NODE, describe_query_error, format_table, query_all, query_status
from cluster.wire import ProtocolError

if TYPE_CHECKING:
    from cluster.node.runtime import ListenError

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
# The status a shell reports for a process that SIGPIPE ended (128 + 13), as when `head` stops reading.
EXIT_BROKEN_PIPE = 141


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cluster",
        description=_("Cluster Sync and Cluster Store: leader election, primary-backup remote write "
                      "and Lamport clocks, run as local processes."),
    )
    # Translators: the placeholder for the subcommand name in the usage line of `cluster --help`.
    commands = parser.add_subparsers(dest="command", required=True, metavar=_("COMMAND"))

    run_help = _("run a whole cluster on this machine and verify the result")
    run = commands.add_parser("run", help=run_help, description=_(
        "Start sync nodes, store nodes and clients on this machine, one process per node, on free loopback "
        "ports. The clients send their messages through the cluster. Then the nodes stop, and the data "
        "directory is checked as `cluster verify` checks it. The exit status is 0 when every message was "
        "acknowledged and every check passed."))
    run.add_argument("--sync", type=int, default=5, help=_("number of sync nodes (default: 5)"))
    run.add_argument("--store", type=int, default=3, help=_("number of store nodes (default: 3)"))
    run.add_argument("--clients", type=int, default=5, help=_("number of clients (default: 5)"))
    run.add_argument("--messages", type=int, default=50,
                     help=_("messages each client sends when --input is not given (default: 50)"))
    run.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR,
                     help=_("directory for output.txt, backups and logs (default: ./shared_data)"))
    run.add_argument("--input", type=Path, dest="input_file",
                     help=_("send the lines of this UTF-8 file, split among the clients "
                            "(at most {limit} bytes per line)").format(limit=MAX_TEXT_BYTES))
    run.add_argument("--seed", type=int, help=_("seed for election timeouts and chaos (default: random)"))
    run.add_argument("--chaos", action="store_true",
                     help=_("kill and restart the sync leader and the store primary while clients send"))
    run.add_argument("--fresh", action="store_true",
                     help=_("remove the files of an earlier run from the data directory first"))
    run.add_argument("--bug", default="", help=_bug_help())
    run.add_argument("--rate", type=float,
                     help=_("new messages per second per client (default: as fast as possible; "
                            "with --chaos, spread over about 3 s)"))
    run.add_argument("--trace-messages", action="store_true",
                     help=_("log every message between sync and store nodes in their event logs, "
                            "so cluster diagram draws one arrow per message"))

    soak_help = _("run many seeded chaos rounds and print the totals")
    soak = commands.add_parser("soak", help=soak_help, description=soak_help)
    soak.add_argument("--rounds", type=int, default=10, help=_("number of rounds (default: 10)"))
    soak.add_argument("--seed", type=int, default=1,
                      help=_("seed of the first round; round i uses seed + i - 1 (default: 1)"))
    soak.add_argument("--clients", type=int, default=5, help=_("clients in each chaos run (default: 5)"))
    soak.add_argument("--messages", type=int, default=200,
                      help=_("messages per client in each chaos run (default: 200)"))
    soak.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR / "soak", metavar="DIR",
                      help=_("directory for the rounds; a failing round is kept in DIR/round_<iii> "
                             "(default: shared_data/soak)"))
    soak.add_argument("--network", action="store_true",
                      help=_("also run one network-fault scenario per round in network namespaces "
                             "(needs root, iproute2 and nftables); a scenario sizes its own load, so "
                             "that its clients send until its fault ends"))

    for role in ("sync", "store"):
        node_help = _("run one {role} node (flags or environment variables)").format(role=role)
        node = commands.add_parser(role, help=node_help, description=node_help)
        _add_node_flags(node)

    client_help = _("run one client (flags or environment variables)")
    client = commands.add_parser("client", help=client_help, description=client_help)
    client.add_argument("--id", type=int, help=_("client id, from 1 (environment: ID)"))
    client.add_argument("--sync-nodes", help=_("host:port:cluster_port of every sync node (environment: SYNC_NODES)"))
    client.add_argument("--messages", type=int, help=_("messages to send (environment: MESSAGES, default: 50)"))
    client.add_argument("--input", type=Path, help=_("send the lines of this UTF-8 file (environment: INPUT)"))
    client.add_argument("--data-dir", type=Path, help=_("directory for the client log (environment: DATA_DIR)"))
    client.add_argument("--rate", type=float,
                        help=_("new messages per second (environment: RATE, default: as fast as possible)"))

    status_help = _("show role, term, epoch and commit index of every node")
    status = commands.add_parser("status", help=status_help, description=status_help)
    status.add_argument("--data-dir", type=Path, metavar="DIR",
                        help=_("read node addresses from DIR/cluster.json of a local run (default: shared_data)"))
    status.add_argument("--sync-nodes", help=_("host:port:cluster_port of every sync node"))
    status.add_argument("--store-nodes", help=_("host:port:cluster_port of every store node"))
    status.add_argument("--host", default="127.0.0.1", help=_("host of a single node (default: 127.0.0.1)"))
    status.add_argument("--port", type=int, help=_("client port of a single node to ask"))
    status.add_argument("--json", action="store_true", help=_("print JSON instead of a table"))

    verify_help = _("check a data directory against the cluster's guarantees")
    verify = commands.add_parser("verify", help=verify_help, description=verify_help)
    verify.add_argument("data_dir", type=Path, metavar="DIR", help=_("data directory of a finished run"))

    _add_health_flags(commands.add_parser("health", help=_health_help(), description=_health_help()))

    from cluster.diagram import add_diagram_parser
    from cluster.sim.cli import add_simulate_parser

    add_simulate_parser(commands)

    add_diagram_parser(commands)

    return parser


def _bug_help() -> str:
    known = ", ".join(bug.value for bug in Bug)
    return _("switch on named protocol mistakes, comma-separated; known bugs: {known}").format(known=known)


def _health_help() -> str:
    return _("exit 0 if the node on this port answers (for health checks)")


def _add_health_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help=_("node host (default: 127.0.0.1)"))
    parser.add_argument("--port", type=int, required=True, help=_("client port of the node"))


def _add_node_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--id", type=int, help=_("node id, from 1 (environment: ID, or the POD_NAME ordinal)"))
    parser.add_argument("--port", help=_("client port (environment: PORT)"))
    parser.add_argument("--cluster-port", help=_("peer port (environment: CLUSTER_PORT)"))
    parser.add_argument("--sync-nodes", help=_("host:port:cluster_port of every sync node (environment: SYNC_NODES)"))
    parser.add_argument("--store-nodes",
                        help=_("host:port:cluster_port of every store node (environment: STORE_NODES)"))
    parser.add_argument("--data-dir", type=Path, help=_("data directory (environment: DATA_DIR)"))
    parser.add_argument("--bind", default="0.0.0.0", help=_("address to listen on (default: 0.0.0.0)"))
    parser.add_argument("--bug", default="", help=_bug_help())
    parser.add_argument("--seed", type=int, help=_("seed for election timeouts (default: random)"))
    parser.add_argument("--key-file", type=Path,
                        help=_("file of hex cluster keys, one per line; the first signs, all are accepted "
                               "(environment: CLUSTER_KEY_FILE, or CLUSTER_KEY with the keys themselves)"))


# --- Commands ---------------------------------------------------------------------------


def command_run(args: argparse.Namespace) -> int:
    from cluster.launcher import RunOptions, check_options, lock_data_dir, prepare_data_dir
    from cluster.run import run_cluster

    options = RunOptions(
        sync=args.sync, store=args.store, clients=args.clients, messages=args.messages, data_dir=args.data_dir,
        input_file=args.input_file, seed=args.seed, chaos=args.chaos, fresh=args.fresh, bugs=parse_bugs_flag(args.bug),
        rate=args.rate, trace_messages=args.trace_messages,
    )
    check_options(options)
    from cluster.launcher import load_texts

    load_texts(options)  # reject a bad input file before anything starts
    with lock_data_dir(options.data_dir):
        prepare_data_dir(options)
        print(_("starting {sync}, {store} and {clients}; data in {path}").format(
            sync=ngettext("{count} sync node", "{count} sync nodes", options.sync).format(count=options.sync),
            store=ngettext("{count} store node", "{count} store nodes", options.store).format(count=options.store),
            clients=ngettext("{count} client", "{count} clients", options.clients).format(count=options.clients),
            path=options.data_dir))
        summary = run_cluster(options, sys.stdout)

    print(format_summary(summary))
    print(format_report_text(summary))
    ok = summary.report.passed and summary.clients_finished and not summary.crashed
    return EXIT_OK if ok else EXIT_FAILED


def command_soak(args: argparse.Namespace) -> int:
    from cluster.launcher import RunError, RunOptions, check_options
    from cluster.soak import format_totals, run_soak

    if not 1 <= args.rounds <= 10_000:
        raise RunError(_("--rounds must be from 1 to 10000, got {value}").format(value=args.rounds))
    base = RunOptions(clients=args.clients, messages=args.messages, data_dir=args.data_dir, chaos=True)
    check_options(base)
    totals = run_soak(args.rounds, args.seed, base, sys.stdout, network=args.network)
    print(format_totals(totals))
    return EXIT_OK if totals.passed else EXIT_FAILED


def format_summary(summary: object) -> str:
    from cluster.exits import format_exits, log_files
    from cluster.launcher import RunSummary
    from cluster.run import SETTLE_SECONDS

    assert isinstance(summary, RunSummary)
    lines = []
    if summary.leader is not None and summary.leader.reply is not None:
        lines.append(_("leader: sync {node}, term {term}").format(node=summary.leader.node,
                                                                  term=summary.leader.reply.term))
    else:
        lines.append(_("leader: none at the end of the run"))
    if summary.primary is not None and summary.primary.reply is not None:
        lines.append(_("store primary: store {node}, epoch {epoch}").format(node=summary.primary.node,
                                                                            epoch=summary.primary.reply.epoch))
    else:
        lines.append(_("store primary: none at the end of the run"))
    rate = summary.committed / summary.seconds if summary.seconds > 0 else 0.0
    lines.append(format_message(_("messages committed: {count} in {seconds:.2f} s ({rate:.0f} messages/s)"),
                                count=summary.committed, seconds=summary.seconds, rate=rate))
    lines.append(_("failovers seen: leader elections {elections}, store epochs made ready {epochs}, nodes killed or "
                   "paused: {kills}").format(
        elections=summary.elections, epochs=summary.epochs, kills=", ".join(summary.kills) or "-"))
    if summary.crashed:
        lines.append(_("nodes that stopped on their own: {nodes}; see {logs} in the data directory").format(
            nodes=format_exits(summary.crashed), logs=log_files(summary.crashed)))
    if summary.stopped_outside:
        lines.append(_("nodes stopped by a signal from outside the run: {nodes}").format(
            nodes=format_exits(summary.stopped_outside)))
    if summary.paused_outside:
        count = len(summary.paused_outside)
        lines.append(ngettext("process paused from outside the run and not resumed: {processes}; the run resumed it "
                              "to stop it",
                              "processes paused from outside the run and not resumed: {processes}; the run resumed "
                              "them to stop them", count).format(
            processes=", ".join(f"{role} {node}" for role, node in summary.paused_outside)))
    if summary.paused_lock_holder is not None:
        role, node = summary.paused_lock_holder
        lines.append(_("{process} was paused while it held output.lock, so no later leader could append to output.txt "
                       "or acknowledge messages until the run resumed it").format(process=f"{role} {node}"))
    if not summary.clients_finished:
        lines.append(_("some clients did not get every message acknowledged"))
    if not summary.settled and summary.leader is None:
        lines.append(_("no leader was elected within {seconds:.0f} s before the nodes stopped, so output.txt and "
                       "the backup files may lack the last committed entries; a majority of the sync nodes must be "
                       "up to elect one").format(seconds=SETTLE_SECONDS))
    elif not summary.settled and summary.paused_lock_holder is None:
        # With a paused lock holder the leader, not the store, is behind, and the line above gives the cause.
        lines.append(_("the store did not catch up with the leader within {seconds:.0f} s before the nodes stopped,"
                       " so the backup files may lack the last entries; see the logs in the data directory").format(
            seconds=SETTLE_SECONDS))
    return "\n".join(lines)


def format_report_text(summary: object) -> str:
    from cluster.launcher import RunSummary
    from cluster.verify import format_report

    assert isinstance(summary, RunSummary)
    text = format_report(summary.report)
    # The report may end with "verification passed", so the last line gives the reason the run failed.
    if summary.crashed:
        count = len(summary.crashed)
        text += "\n" + ngettext("run failed: {count} node stopped on its own",
                                "run failed: {count} nodes stopped on their own", count).format(count=count)
    elif not summary.clients_finished and summary.report.passed:
        text += "\n" + _("run failed: some clients did not get every message acknowledged")
    return text


def node_settings(role: str, args: argparse.Namespace, env: Mapping[str, str]) -> NodeSettings:
    """Build a node's settings from flags, falling back to the environment."""
    node_id = resolve_node_id(args.id, env)
    sync_nodes = parse_node_list(_flag_or_env(args.sync_nodes, env, "SYNC_NODES"), "SYNC_NODES")
    data_dir = args.data_dir or Path(env.get("DATA_DIR") or DEFAULT_DATA_DIR)

    if role == "client":
        texts = _client_texts(args, env, node_id)
        rate = args.rate
        if rate is None and env.get("RATE"):
            rate = _parse_rate(env["RATE"])
        if rate is not None and rate <= 0:
            raise SettingsError(_("RATE must be above 0 messages per second, got {rate}").format(rate=rate))
        return NodeSettings(role, node_id, sync_nodes, (), data_dir, texts=tuple(texts), rate=rate)

    store_nodes = parse_node_list(_flag_or_env(args.store_nodes, env, "STORE_NODES"), "STORE_NODES")
    check_member(node_id, sync_nodes if role == "sync" else store_nodes, role)
    port = parse_port(_flag_or_env(args.port, env, "PORT"), "PORT")
    cluster_port = parse_port(_flag_or_env(args.cluster_port, env, "CLUSTER_PORT"), "CLUSTER_PORT")
    if port == cluster_port:
        raise SettingsError(_("PORT and CLUSTER_PORT are both {port}; a node listens for clients and for peers on "
                              "two different ports, so give them different values").format(port=port))
    bugs = parse_bugs_flag(args.bug)
    trace_messages = _env_flag(env, "TRACE_MESSAGES")
    # The key ring comes last because it may create DATA_DIR/cluster.key, and a rejected setting must leave no file.
    keys, key_warning = resolve_key_ring(args.key_file, env, data_dir)
    if key_warning is not None:
        print(_("cluster: warning: {warning}").format(warning=key_warning), file=sys.stderr)
    return NodeSettings(
        role, node_id, sync_nodes, store_nodes, data_dir, bind_host=args.bind, port=port,
        cluster_port=cluster_port, bugs=bugs, seed=args.seed, keys=keys, trace_messages=trace_messages,
    )


def _client_texts(args: argparse.Namespace, env: Mapping[str, str], client_id: int) -> list[str]:
    input_file = args.input or (Path(env["INPUT"]) if env.get("INPUT") else None)
    if input_file is not None:
        from cluster.launcher import RunOptions, load_texts

        return load_texts(RunOptions(clients=1, input_file=input_file))[0]
    count = args.messages if args.messages is not None else parse_int(env.get("MESSAGES") or "50", "MESSAGES")
    if count < 0:
        raise SettingsError(_("MESSAGES must be 0 or more, got {count}").format(count=count))
    return [f"client {client_id} message {index}" for index in range(1, count + 1)]


def _parse_rate(value: str) -> float:
    try:
        return float(value)
    except ValueError:
        raise SettingsError(_("RATE must be a number of messages per second, got {value!r}").format(
            value=value)) from None


def _env_flag(env: Mapping[str, str], name: str) -> bool:
    """Read an on/off environment variable: 1, true, yes or on (any case) is on; unset or empty is off."""
    value = env.get(name, "").strip().lower()
    if value in ("", "0", "false", "no", "off"):
        return False
    if value in ("1", "true", "yes", "on"):
        return True
    raise SettingsError(_("{name} must be 1, true, yes or on to switch it on, or 0, false, no, off or empty to "
                          "switch it off (in any case), got {value!r}").format(name=name, value=env[name]))


def _flag_or_env(flag: str | None, env: Mapping[str, str], name: str) -> str:
    value = flag if flag is not None else env.get(name)
    if not value:
        raise SettingsError(_("{name} is missing; pass --{flag} or set {name}").format(
            name=name, flag=name.lower().replace("_", "-")))
    return value


def command_node(role: str, args: argparse.Namespace) -> int:
    import os

    from cluster.node.main import run_node
    from cluster.node.runtime import ListenError

    settings = node_settings(role, args, os.environ)
    try:
        return run_node(settings)
    except ListenError as error:
        print(_("cluster: error: {error}").format(error=describe_listen_error(error)), file=sys.stderr)
        return EXIT_USAGE


def describe_listen_error(error: ListenError) -> str:
    """Return why a node could not listen on a port, with the setting that chose the port and the fix."""
    import errno
    import socket

    from cluster.error_text import describe_os_error

    setting = "--port / PORT" if error.port_kind == "client" else "--cluster-port / CLUSTER_PORT"
    if isinstance(error.error, socket.gaierror):
        return _("cannot listen on {host}:{port} ({setting}): the name {host} does not resolve to an address of "
                 "this machine; pass --bind an IP address of this machine, or 0.0.0.0 for all of them").format(
            host=error.host, port=error.port, setting=setting)
    if error.errno == errno.EADDRINUSE:
        return _("cannot listen on {host}:{port} ({setting}): another process already uses that port; stop it "
                 "or choose another port").format(host=error.host, port=error.port, setting=setting)
    if error.errno in (errno.EACCES, errno.EPERM):
        return _("cannot listen on {host}:{port} ({setting}): permission denied; choose a port from 1024 up").format(
            host=error.host, port=error.port, setting=setting)
    if error.errno == errno.EADDRNOTAVAIL:
        return _("cannot listen on {host}:{port} ({setting}): this machine has no such address; check --bind "
                 "and the node's address in SYNC_NODES or STORE_NODES").format(
            host=error.host, port=error.port, setting=setting)
    return _("cannot listen on {host}:{port} ({setting}): {reason}").format(
        host=error.host, port=error.port, setting=setting, reason=describe_os_error(error.error))


def command_status(args: argparse.Namespace) -> int:
    from cluster.launcher import find_leader, find_primary
    if args.port is not None:
        # The kind of node is unknown, so `format_table` labels this row with the node id of its reply.
        targets = [(SINGLE_NODE, 1, args.host, parse_port(str(args.port), "--port"))]
    else:
        sync_nodes, store_nodes = _status_addresses(args)
        targets = [("sync", index, address.host, address.port) for index, address in enumerate(sync_nodes, 1)]
        targets += [("store", index, address.host, address.port) for index, address in enumerate(store_nodes, 1)]
    statuses = asyncio.run(query_all(targets))
    if args.json:
        print(json.dumps([
            {"kind": s.role, "node": s.node, "address": f"{s.host}:{s.port}",
             **({"error": s.error} if s.reply is None else {
                 "role": s.reply.role, "term": s.reply.term, "leader": s.reply.leader, "epoch": s.reply.epoch,
                 "primary": s.reply.primary, "commit": s.reply.commit, "log_len": s.reply.log_len})}
            for s in statuses
        ], indent=2, ensure_ascii=False))
    else:
        print(format_table(statuses))
        leader, primary = find_leader(statuses), find_primary(statuses)
        if leader is not None and leader.reply is not None:
            print(_("leader: sync {node}, term {term}").format(node=leader.node, term=leader.reply.term))
        if primary is not None and primary.reply is not None:
            print(_("store primary: store {node}, epoch {epoch}").format(node=primary.node, epoch=primary.reply.epoch))
    return EXIT_OK if all(status.reply is not None for status in statuses) else EXIT_FAILED


def _status_addresses(args: argparse.Namespace) -> tuple[tuple[NodeAddress, ...], tuple[NodeAddress, ...]]:
    if args.sync_nodes or args.store_nodes:
        sync_nodes = parse_node_list(args.sync_nodes, "--sync-nodes") if args.sync_nodes else ()
        store_nodes = parse_node_list(args.store_nodes, "--store-nodes") if args.store_nodes else ()
        return sync_nodes, store_nodes
    data_dir = args.data_dir or DEFAULT_DATA_DIR
    layout_path = data_dir / "cluster.json"
    try:
        text = layout_path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise SettingsError(_("{path} not found; pass --data-dir of a running local cluster, "
                              "--sync-nodes and --store-nodes, or --port").format(path=layout_path)) from None
    except OSError as error:
        raise SettingsError(_("cannot read {path}: {reason}; pass --data-dir of a running local cluster, "
                              "--sync-nodes and --store-nodes, or --port").format(
            path=layout_path, reason=describe_os_error(error))) from None
    except UnicodeDecodeError:
        raise SettingsError(_("{path} is not UTF-8 text; {layout}").format(
            path=layout_path, layout=_layout_hint())) from None
    try:
        layout = json.loads(text)
    except json.JSONDecodeError as error:
        raise SettingsError(_("{path} is not valid JSON ({reason}); {layout}").format(
            path=layout_path, reason=describe_json_error(error), layout=_layout_hint())) from None
    except (RecursionError, ValueError):
        raise SettingsError(_("{path} is nested too deeply or contains a number too long; {layout}").format(
            path=layout_path, layout=_layout_hint())) from None
    return _layout_nodes(layout, layout_path, "sync_nodes"), _layout_nodes(layout, layout_path, "store_nodes")


def _layout_hint() -> str:
    return _("cluster.json must be a JSON object with the keys \"sync_nodes\" and \"store_nodes\", each a list "
             "of \"host:port:cluster_port\" strings, as `cluster run` writes it")


def _layout_nodes(layout: object, path: Path, key: str) -> tuple[NodeAddress, ...]:
    """Return the addresses listed under `key` of a parsed cluster.json, or raise SettingsError naming the fault."""
    if not isinstance(layout, dict):
        raise SettingsError(_("{path} contains {value} instead of a JSON object; {layout}").format(
            path=path, value=json_value_text(layout), layout=_layout_hint()))
    if key not in layout:
        raise SettingsError(_("{path} has no key \"{key}\"; {layout}").format(
            path=path, key=key, layout=_layout_hint()))
    entries = layout[key]
    if not isinstance(entries, list) or not all(isinstance(entry, str) for entry in entries):
        raise SettingsError(_("{path}: \"{key}\" must be a list of strings, found {value}; {layout}").format(
            path=path, key=key, value=json_value_text(entries), layout=_layout_hint()))
    return parse_node_list(",".join(entries), f"{path} \"{key}\"")


def command_verify(args: argparse.Namespace) -> int:
    from cluster.launcher import lock_data_dir_shared
    from cluster.verify import format_report, verify

    with lock_data_dir_shared(args.data_dir):
        report = verify(args.data_dir)
    print(format_report(report))
    return EXIT_OK if report.passed else EXIT_FAILED


def command_health(args: argparse.Namespace) -> int:
    port = parse_port(str(args.port), "--port")
    try:
        reply = asyncio.run(query_status(args.host, port))
    except (OSError, TimeoutError, ProtocolError, EOFError) as error:
        print(_("node at {host}:{port} did not answer: {reason}; check that a node runs there and that --host "
                "and --port give its client port").format(
            host=args.host, port=port, reason=describe_query_error(error)), file=sys.stderr)
        return EXIT_FAILED
    print(_("{role} {node} term {term} epoch {epoch}").format(
        role=reply.role, node=reply.node, term=reply.term, epoch=reply.epoch))
    return EXIT_OK


def _discard_stdout() -> None:
    """Point stdout at /dev/null after its reader went away, so that the flush at exit raises no second error."""
    import os

    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    if arguments[:1] == ["health"]:
        # Health probes start this command every few seconds, so it skips
        # importing the simulator, the launcher and the other commands.
        health = argparse.ArgumentParser(prog="cluster health", description=_health_help())
        _add_health_flags(health)
        try:
            return command_health(health.parse_args(arguments[1:]))
        except SettingsError as error:
            print(_("cluster: error: {error}").format(error=error), file=sys.stderr)
            return EXIT_USAGE

    from cluster.diagram import run_diagram
    from cluster.launcher import RunError
    from cluster.sim.cli import run_simulate

    parser = build_parser()
    args = parser.parse_args(arguments)
    try:
        if args.command == "run":
            return command_run(args)
        if args.command == "soak":
            return command_soak(args)
        if args.command in ("sync", "store", "client"):
            return command_node(args.command, args)
        if args.command == "status":
            return command_status(args)
        if args.command == "verify":
            return command_verify(args)
        if args.command == "health":
            return command_health(args)
        if args.command == "simulate":
            return run_simulate(args)
        if args.command == "diagram":
            return run_diagram(args)
    except (RunError, SettingsError, DataFileError, ValueError) as error:
        print(_("cluster: error: {error}").format(error=error), file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(_("cluster: interrupted"), file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        _discard_stdout()
        return EXIT_BROKEN_PIPE
    parser.error(_("unknown command {command}").format(command=args.command))
    return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
