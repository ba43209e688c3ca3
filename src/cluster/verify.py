"""Check a data directory after a run against the cluster's guarantees.

`verify` first reads the output fence, the state files, the write-ahead logs
and the backup files with the readers that the nodes use, and raises
DataFileError on the first file that a node would reject. It then reads
output.txt, every backup file, the store state files (for the final
configuration), the client logs (what was sent and acknowledged) and the
sync event logs (who led which term), and runs the invariants of
`cluster.invariants` on them. The committed log is taken from the backup file
of the final configuration's primary: after a clean stop the primary has
committed everything any client saw acknowledged.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeGuard

from cluster.core.config import config_from_dict
from cluster.core.messages import Entry, StoreConfig
from cluster.error_text import (
    describe_json_error,
    describe_os_error,
    describe_unicode_error,
    json_error_reason,
    json_value_text,
)
from cluster.files import (
    BackupFile,
    DataFileError,
    OutputFile,
    StateFile,
    WriteAheadLog,
    backup_path,
    check_state,
    layout_path,
    output_path,
    read_entries,
    wal_path,
)
from cluster.i18n import _, ngettext
from cluster.invariants import (
    Ack,
    acked_committed,
    client_order,
    committed_on_all,
    election_safety,
    lamport_order,
    log_matching,
    output_prefix,
)


@dataclass(frozen=True, slots=True)
class CheckResult:
    name: str
    rule: str
    violations: list[str]

    @property
    def passed(self) -> bool:
        return not self.violations


@dataclass(slots=True)
class ClientLog:
    sent: dict[int, tuple[int, str]] = field(default_factory=dict)  # request id -> (lamport, text)
    acks: list[Ack] = field(default_factory=list)
    finished: bool = False


@dataclass(slots=True)
class Report:
    checks: list[CheckResult]
    output_entries: int
    sent: int
    acknowledged: int
    final_config: StoreConfig | None
    leaders: list[tuple[int, int]]

    @property
    def passed(self) -> bool:
        return all(check.passed for check in self.checks)


def verify(data_dir: Path) -> Report:
    """Run every check on `data_dir`.

    Raises DataFileError when `data_dir` is not the data directory of a run, or
    when a file cannot be read or a node would reject it.
    """
    _check_run_directory(data_dir)
    try:
        return _verify_files(data_dir)
    except OSError as error:
        # A file of the run that cannot be read now, because of its permissions or a directory in its place.
        path = error.filename if error.filename is not None else data_dir
        raise _unreadable(path, error) from None


def _verify_files(data_dir: Path) -> Report:
    _check_node_files(data_dir)
    output = read_entries(output_path(data_dir))
    backups = _load_backups(data_dir)
    final_config = _final_config(data_dir)
    clients = _load_clients(data_dir)
    leaders = _load_leaders(data_dir)

    members = final_config.members if final_config else ()
    committed: list[Entry] = list(backups.get(final_config.primary, [])) if final_config else []
    member_logs = {node: backups.get(node, []) for node in members}
    acks = [ack for log in clients.values() for ack in log.acks]

    checks = [
        CheckResult("ElectionSafetyInv", _("at most one leader per term"), election_safety(leaders)),
        CheckResult(
            "AckedCommittedInv",
            _("every acknowledged message is committed and in output.txt"),
            acked_committed(acks, committed, output),
        ),
        CheckResult(
            "ExactlyOnce",
            _("every message appears at most once in output.txt, and every acknowledged one exactly once"),
            _exactly_once(output, acks),
        ),
        CheckResult(
            "CommittedOnAllInv",
            _("every committed message is in every backup of the final configuration"),
            committed_on_all(committed, member_logs),
        ),
        CheckResult(
            "OutputPrefixInv",
            _("output.txt holds the committed sequence"),
            output_prefix(output, committed) + _same_length(output, committed),
        ),
        CheckResult(
            "LogMatchingInv",
            _("backups agree with each other; a lagging or removed node's file is a prefix"),
            log_matching(member_logs, backups, {node: len(log) for node, log in backups.items()}, committed),
        ),
        CheckResult(
            "LamportOrderInv",
            _("Lamport timestamps strictly increase along output.txt"),
            lamport_order(output),
        ),
        CheckResult(
            "ClientOrderInv",
            _("each client's messages appear in the order that client sent them"),
            client_order(output),
        ),
        CheckResult(
            "SentByClient",
            _("every line of output.txt is a message a client sent, stamped after the client's timestamp"),
            _sent_by_client(output, clients),
        ),
    ]
    return Report(
        checks=checks,
        output_entries=len(output),
        sent=sum(len(log.sent) for log in clients.values()),
        acknowledged=len(acks),
        final_config=final_config,
        leaders=sorted(set(leaders)),
    )


def unreadable_report(error: DataFileError) -> Report:
    """Return a failed report for a run whose data files could not be checked, naming the file and the reason."""
    check = CheckResult("DataFiles", _("every data file of the run can be read"), [str(error)])
    return Report(checks=[check], output_entries=0, sent=0, acknowledged=0, final_config=None, leaders=[])


def format_report(report: Report) -> str:
    lines = []
    for check in report.checks:
        mark = _("PASS") if check.passed else _("FAIL")
        lines.append(f"{mark}  {check.name}: {check.rule}")
        shown = check.violations[:10]
        lines += [f"      - {violation}" for violation in shown]
        if len(check.violations) > len(shown):
            lines.append("      - " + _("... and {count} more").format(count=len(check.violations) - len(shown)))
    in_output = ngettext("{count} message in output.txt", "{count} messages in output.txt",
                         report.output_entries).format(count=report.output_entries)
    acknowledged = ngettext("{acked} of {sent} sent message acknowledged",
                            "{acked} of {sent} sent messages acknowledged", report.sent).format(
        acked=report.acknowledged, sent=report.sent)
    lines.append(f"{in_output}; {acknowledged}")
    verdict = _("verification passed") if report.passed else _("verification FAILED")
    lines.append(verdict)
    return "\n".join(lines)


# --- Loading ------------------------------------------------------------------------


def _unreadable(path: str | Path, error: OSError) -> DataFileError:
    reason = describe_os_error(error)
    return DataFileError(path, _("cannot be read: {reason}; check that it is a file you may read, as a run "
                                 "writes it").format(reason=reason))


def _check_run_directory(data_dir: Path) -> None:
    if not data_dir.exists():
        raise DataFileError(data_dir, _("not found; give `cluster verify` the data directory of a finished "
                                        "run, for example `cluster verify shared_data`"))
    if not data_dir.is_dir():
        raise DataFileError(data_dir, _("is not a directory; give `cluster verify` the data directory of a finished "
                                        "run, for example `cluster verify shared_data`"))
    # `cluster run` writes cluster.json; nodes started one by one with
    # `cluster sync` and `cluster store` leave only their own files.
    node_files = [*data_dir.glob("sync_*.state.json"), *data_dir.glob("store_*.wal")]
    if not layout_path(data_dir).is_file() and not node_files:
        raise DataFileError(data_dir, _("has no cluster.json and no node's state file or write-ahead log, so it is "
                                        "not the data directory of a cluster; pass the directory that "
                                        "`cluster run --data-dir` or the nodes' DATA_DIR used (shared_data by "
                                        "default)"))


def _check_node_files(data_dir: Path) -> None:
    """Read the fence, the state files, the write-ahead logs and the backup files as a starting node does.

    The files are only read, so a partial last line, which a node cuts off at
    start, stays in place.
    """
    OutputFile(data_dir).read_fence()
    for role in ("sync", "store"):
        for path in sorted(data_dir.glob(f"{role}_*.state.json")):
            state = StateFile(path).load()
            if state is not None:
                check_state(path, state, role)

    store_nodes = {_node_id(path, "store_") for path in data_dir.glob("store_*.wal")}
    store_nodes |= {_node_id(path, "backup_") for path in data_dir.glob("backup_*.txt")}
    for node in sorted(store_nodes):
        wal = WriteAheadLog(wal_path(data_dir, node))
        log = wal.load(repair=False)
        BackupFile(backup_path(data_dir, node)).load_prefix_of(wal, log, repair=False)


def _load_backups(data_dir: Path) -> dict[int, list[Entry]]:
    backups = {}
    for path in sorted(data_dir.glob("backup_*.txt")):
        node = _node_id(path, "backup_")
        backups[node] = read_entries(path)
    return backups


def _final_config(data_dir: Path) -> StoreConfig | None:
    newest: StoreConfig | None = None
    for path in sorted(data_dir.glob("store_*.state.json")):
        config = config_from_dict(check_state(path, _read_json(path), "store")["config"])
        if newest is None or config.key > newest.key:
            newest = config
    return newest


def _is_json_int(value: object) -> TypeGuard[int]:
    # json.loads reads true and false as bool, which is a subclass of int.
    return isinstance(value, int) and not isinstance(value, bool)


def _load_clients(data_dir: Path) -> dict[int, ClientLog]:
    clients: dict[int, ClientLog] = {}
    for path in sorted(data_dir.glob("client_*.jsonl")):
        client = _node_id(path, "client_")
        log = clients.setdefault(client, ClientLog())
        for number, record in _read_json_lines(path):
            event = record.get("event")
            if event == "sent":
                request = _int_field(record, "request_id", path, number)
                lamport = _int_field(record, "lamport", path, number)
                text = record.get("text")
                if not isinstance(text, str):
                    raise DataFileError(path, _("the \"sent\" record needs the field \"text\" with a string, "
                                                "found {value}").format(value=json_value_text(text)), number)
                log.sent[request] = (lamport, text)
            elif event == "acked":
                log.acks.append(Ack(client, _int_field(record, "request_id", path, number),
                                    _int_field(record, "seq", path, number)))
            elif event == "finished":
                log.finished = True
    return clients


def _int_field(record: dict[str, Any], name: str, path: Path, number: int) -> int:
    """Return the integer field `name` of a JSON lines record, or raise DataFileError naming the field."""
    value = record.get(name)
    if not _is_json_int(value):
        raise DataFileError(path, _("the \"{event}\" record needs the field \"{name}\" with an integer, "
                                    "found {value}").format(event=record.get("event"), name=name,
                                                            value=json_value_text(value)), number)
    return value


def _load_leaders(data_dir: Path) -> list[tuple[int, int]]:
    leaders = []
    for path in sorted(data_dir.glob("events_sync_*.jsonl")):
        node = _node_id(path, "events_sync_")
        for number, record in _read_json_lines(path):
            if record.get("event") == "became_leader":
                leaders.append((_int_field(record, "term", path, number), node))
    return leaders


def _node_id(path: Path, prefix: str) -> int:
    stem = path.name.removeprefix(prefix).split(".")[0]
    try:
        return int(stem)
    except ValueError:
        raise DataFileError(path, _("name does not end in a node id after {prefix!r}").format(prefix=prefix)) from None


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_bytes().decode("utf-8"))
    except OSError as error:
        raise _unreadable(path, error) from None
    except UnicodeDecodeError as error:
        raise DataFileError(path, _("is not valid UTF-8: {reason}").format(
            reason=describe_unicode_error(error))) from None
    except json.JSONDecodeError as error:
        raise DataFileError(path, _("cannot be read as JSON ({error})").format(
            error=describe_json_error(error))) from None
    except (RecursionError, ValueError):
        raise DataFileError(path, _("cannot be read as JSON (nested too deeply, or a number too long)")) from None
    if not isinstance(data, dict):
        raise DataFileError(path, _("expected a JSON object, found {value}").format(value=json_value_text(data)))
    return data


def _read_json_lines(path: Path) -> list[tuple[int, dict[str, Any]]]:
    """Return (line number, record) for each JSON object line of a log, skipping a cut last line."""
    records = []
    lines = path.read_bytes().split(b"\n")
    for number, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as error:
            if number == len(lines):
                continue  # a process killed while writing can cut a UTF-8 character
            raise DataFileError(path, _("line is not valid UTF-8: {error}").format(
                error=describe_unicode_error(error)), number) from None
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            if number == len(lines):
                continue  # a partial last line from a process that was killed
            raise DataFileError(path, _("line is not valid JSON at column {column}: {reason}").format(
                column=error.colno, reason=json_error_reason(error)), number) from None
        except (RecursionError, ValueError):
            raise DataFileError(path, _("line cannot be read as JSON (nested too deeply, or a number too long)"),
                                number) from None
        if isinstance(record, dict):
            records.append((number, record))
    return records


# --- Checks that need more than one source ------------------------------------------------


def _exactly_once(output: list[Entry], acks: list[Ack]) -> list[str]:
    counts: dict[tuple[int, int], int] = {}
    for entry in output:
        key = (entry.client_id, entry.request_id)
        counts[key] = counts.get(key, 0) + 1
    violations = [
        _("client {client} request {request} appears {count} times in output.txt").format(
            client=client, request=request, count=count)
        for (client, request), count in sorted(counts.items())
        if count > 1
    ]
    missing = sorted({(ack.client_id, ack.request_id) for ack in acks} - counts.keys())
    violations += [
        _("client {client} request {request} was acknowledged but is missing").format(client=client, request=request)
        for client, request in missing
    ]
    return violations


def _same_length(output: list[Entry], committed: list[Entry]) -> list[str]:
    if len(output) < len(committed):
        return [ngettext("output.txt holds {output} entry but the primary committed {committed}",
                         "output.txt holds {output} entries but the primary committed {committed}",
                         len(output)).format(output=len(output), committed=len(committed))]
    return []


def _sent_by_client(output: list[Entry], clients: dict[int, ClientLog]) -> list[str]:
    violations = []
    for entry in output:
        log = clients.get(entry.client_id)
        sent = log.sent.get(entry.request_id) if log else None
        if sent is None:
            violations.append(_("seq {seq}: client {client} has no record of request {request}").format(
                seq=entry.seq, client=entry.client_id, request=entry.request_id))
            continue
        lamport, text = sent
        if text != entry.text:
            violations.append(_("seq {seq}: text differs from what client {client} sent").format(
                seq=entry.seq, client=entry.client_id))
        if entry.lamport <= lamport:
            violations.append(
                _("seq {seq}: Lamport timestamp {lamport} is not after the client's {client_lamport}").format(
                    seq=entry.seq, lamport=entry.lamport, client_lamport=lamport)
            )
    return violations
