"""`cluster run` input checks, `--input` files and Ctrl-C, against the real CLI."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from cluster.core.messages import MAX_TEXT_BYTES
from cluster.files import EventLog, events_path, output_path, read_entries
from tests.e2e_helpers import wait_for


def run_cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "cluster", *args], capture_output=True, text=True, timeout=timeout)


def test_input_line_too_long(tmp_path: Path) -> None:
    """A line over the size limit is rejected, naming the line, before any node starts."""
    source = tmp_path / "input.txt"
    source.write_text("short\n" + "x" * (MAX_TEXT_BYTES + 1) + "\nshort again\n", encoding="utf-8")

    result = run_cli("run", "--input", str(source), "--data-dir", str(tmp_path / "data"))

    assert result.returncode == 2
    assert "line 2" in result.stderr
    assert str(MAX_TEXT_BYTES) in result.stderr
    assert not (tmp_path / "data").exists()


def test_input_not_utf8(tmp_path: Path) -> None:
    """A file that is not UTF-8 is rejected with the line and the fix."""
    source = tmp_path / "input.txt"
    source.write_bytes(b"fine\n\xff\xfe broken\n")

    result = run_cli("run", "--input", str(source), "--data-dir", str(tmp_path / "data"))

    assert result.returncode == 2
    assert "line 2 is not valid UTF-8" in result.stderr


def test_input_missing(tmp_path: Path) -> None:
    result = run_cli("run", "--input", str(tmp_path / "nope.txt"), "--data-dir", str(tmp_path / "data"))

    assert result.returncode == 2
    assert "nope.txt" in result.stderr


@pytest.mark.parametrize(
    ("flag", "value"), [("--sync", "0"), ("--store", "-1"), ("--clients", "0"), ("--sync", "10")]
)
def test_size_out_of_range(tmp_path: Path, flag: str, value: str) -> None:
    result = run_cli("run", flag, value, "--data-dir", str(tmp_path / "data"))

    assert result.returncode == 2
    assert flag in result.stderr
    assert value in result.stderr


def test_unknown_bug_name(tmp_path: Path) -> None:
    result = run_cli("run", "--bug", "typo", "--data-dir", str(tmp_path / "data"))

    assert result.returncode == 2
    assert "typo" in result.stderr
    assert "early_ack" in result.stderr


def test_leftover_data_dir_kept(tmp_path: Path) -> None:
    """Files of an earlier run are neither overwritten nor removed without --fresh."""
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    (data_dir / "output.txt").write_text("1\t1\t2\t1\t1\tacknowledged earlier\n", encoding="utf-8")

    result = run_cli("run", "--data-dir", str(data_dir))

    assert result.returncode == 2
    assert "--fresh" in result.stderr
    assert (data_dir / "output.txt").read_text(encoding="utf-8") == "1\t1\t2\t1\t1\tacknowledged earlier\n"


@pytest.mark.parametrize("fresh", [True, False], ids=["fresh", "plain"])
def test_data_dir_in_use_rejected(tmp_path: Path, fresh: bool) -> None:
    """A run on a directory that another run has locked stops before it removes or writes a file."""
    from cluster.launcher import lock_data_dir

    data_dir = tmp_path / "data"
    data_dir.mkdir()
    (data_dir / "output.txt").write_text("1\t1\t2\t1\t1\tstill running\n", encoding="utf-8")
    (data_dir / "cluster.json").write_text("{}\n", encoding="utf-8")

    with lock_data_dir(data_dir):
        result = run_cli("run", *(["--fresh"] if fresh else []), "--data-dir", str(data_dir))

    assert result.returncode == 2
    assert f"--data-dir {data_dir} is in use by another `cluster run`" in result.stderr
    assert "wait for that run to finish, or pass another --data-dir" in result.stderr
    assert (data_dir / "output.txt").read_text(encoding="utf-8") == "1\t1\t2\t1\t1\tstill running\n"
    assert (data_dir / "cluster.json").read_text(encoding="utf-8") == "{}\n"
    assert not (data_dir / "logs").exists()
    assert not (data_dir / "cluster.key").exists()


@pytest.mark.e2e
def test_second_run_and_verify_wait_for_first(tmp_path: Path) -> None:
    """`cluster run --fresh` and `cluster verify` on the directory of a run in progress fail, and the first run
    still verifies."""
    data_dir = tmp_path / "data"
    first = subprocess.Popen(
        [sys.executable, "-m", "cluster", "run", "--sync", "1", "--store", "1", "--clients", "1",
         "--messages", "300", "--rate", "100", "--data-dir", str(data_dir)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
    )
    try:
        wait_for(lambda: output_path(data_dir).exists() and output_path(data_dir).stat().st_size > 0, 60,
                 "the first committed message")
        second = run_cli("run", "--fresh", "--data-dir", str(data_dir))
        early_verify = run_cli("verify", str(data_dir))
        stdout, stderr = first.communicate(timeout=60)
        late_verify = run_cli("verify", str(data_dir))
    finally:
        if first.poll() is None:
            os.killpg(first.pid, signal.SIGKILL)
            first.wait()

    assert second.returncode == 2
    assert "is in use by another `cluster run`" in second.stderr
    assert early_verify.returncode == 2
    assert f"{data_dir} is in use by a running cluster" in early_verify.stderr
    assert "wait for `cluster run` to finish, or stop its node processes" in early_verify.stderr
    assert early_verify.stdout == ""
    assert late_verify.returncode == 0, late_verify.stdout + late_verify.stderr
    assert first.returncode == 0, stdout + stderr
    assert "verification passed" in stdout
    assert len(read_entries(output_path(data_dir))) == 300


@pytest.mark.e2e
def test_lock_file_not_leftover(tmp_path: Path) -> None:
    """The lock file left by a finished run is not an earlier run's file, and --fresh still works after a run."""
    from cluster.launcher import lock_data_dir

    data_dir = tmp_path / "data"
    with lock_data_dir(data_dir):
        pass
    small_run = ("run", "--sync", "1", "--store", "1", "--clients", "1", "--messages", "3",
                 "--data-dir", str(data_dir))

    plain = run_cli(*small_run)
    fresh = run_cli(*small_run, "--fresh")

    assert plain.returncode == 0, plain.stdout + plain.stderr
    assert fresh.returncode == 0, fresh.stdout + fresh.stderr
    assert "verification passed" in fresh.stdout


@pytest.mark.e2e
def test_input_lines_sent_once(tmp_path: Path) -> None:
    """Every line of an --input file is committed exactly once, in each client's order."""
    lines = [f"línea {index} — ação" for index in range(60)] + ["", "tab\tinside", "last"]
    source = tmp_path / "input.txt"
    source.write_text("\n".join(lines) + "\n", encoding="utf-8")

    result = run_cli("run", "--sync", "3", "--store", "2", "--clients", "4", "--input", str(source),
                     "--data-dir", str(tmp_path / "data"), "--seed", "5")

    assert result.returncode == 0, result.stdout + result.stderr
    output = read_entries(output_path(tmp_path / "data"))
    assert sorted(entry.text for entry in output) == sorted(lines)
    for client in range(1, 5):
        sent = [line for index, line in enumerate(lines) if index % 4 == client - 1]
        assert [entry.text for entry in output if entry.client_id == client] == sent


@pytest.mark.e2e
def test_ctrl_c_stops_every_node(tmp_path: Path) -> None:
    """Ctrl-C stops the launcher and every node process, and exits with 130."""
    data_dir = tmp_path / "data"
    process = subprocess.Popen(
        [sys.executable, "-m", "cluster", "run", "--sync", "3", "--store", "2", "--clients", "2",
         "--messages", "100000", "--data-dir", str(data_dir)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
    )
    layout_path = data_dir / "cluster.json"
    try:
        wait_for(lambda: output_path(data_dir).exists() and output_path(data_dir).stat().st_size > 0, 60,
                 "the first committed message")
        os.killpg(process.pid, signal.SIGINT)
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()

    assert process.returncode == 130
    layout = json.loads(layout_path.read_text(encoding="utf-8"))
    for address in layout["sync_nodes"] + layout["store_nodes"]:
        host, port, _cluster_port = address.split(":")
        with pytest.raises(ConnectionRefusedError), socket.create_connection((host, int(port)), timeout=2):
            pass


def _listening_pid(port: int) -> int:
    """Return the id of the process that listens on TCP `port` of 127.0.0.1, as `lsof -i` finds it."""
    inodes = set()
    for line in Path("/proc/net/tcp").read_text(encoding="ascii").splitlines()[1:]:
        fields = line.split()
        local_port = int(fields[1].split(":")[1], 16)
        if local_port == port and fields[3] == "0A":  # 0A is TCP_LISTEN
            inodes.add(f"socket:[{fields[9]}]")
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            if any(os.readlink(fd) in inodes for fd in (entry / "fd").iterdir()):
                return int(entry.name)
    raise LookupError(f"no process listens on port {port}")


def _run_signalling_sync_node(data_dir: Path, pick: str, sent: signal.Signals) -> tuple[int, str, str, int]:
    """Start `cluster run`, send `sent` to its leader or a follower (`pick`), and wait for the run to end.

    Return the node's id, the run's stdout and stderr, and its exit status.
    """
    from cluster.launcher import find_leader
    from cluster.status import query_all

    process = subprocess.Popen(
        [sys.executable, "-m", "cluster", "run", "--sync", "3", "--store", "2", "--clients", "2",
         "--messages", "20000", "--data-dir", str(data_dir)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
    )
    try:
        wait_for(lambda: output_path(data_dir).exists() and output_path(data_dir).stat().st_size > 0, 60,
                 "the first committed message")
        layout = json.loads((data_dir / "cluster.json").read_text(encoding="utf-8"))
        nodes = [("sync", index, *address.split(":")[:2]) for index, address in enumerate(layout["sync_nodes"], 1)]
        statuses = asyncio.run(query_all([(role, node, host, int(port)) for role, node, host, port in nodes]))
        leader = find_leader(statuses)
        assert leader is not None
        target = leader if pick == "leader" else next(status for status in statuses if status.node != leader.node)
        os.kill(_listening_pid(target.port), sent)
        stdout, stderr = process.communicate(timeout=180)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    return target.node, stdout, stderr, process.returncode


@pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="finding a node's process needs Linux /proc")
def test_leader_killed_by_hand_run_passes(tmp_path: Path) -> None:
    """A leader that another process kills with SIGKILL is reported as stopped from outside, and the run passes."""
    leader, stdout, stderr, status = _run_signalling_sync_node(tmp_path / "data", "leader", signal.SIGKILL)

    assert status == 0, stdout + stderr
    assert (f"nodes stopped by a signal from outside the run: sync {leader} (ended by signal SIGKILL)"
            in stdout.splitlines())
    assert "stopped on their own" not in stdout
    assert stdout.splitlines()[-1] == "verification passed"


@pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="finding a node's process needs Linux /proc")
def test_follower_paused_by_hand_reported(tmp_path: Path) -> None:
    """A follower that another process pauses with SIGSTOP and never resumes is named, and the run passes."""
    follower, stdout, stderr, status = _run_signalling_sync_node(tmp_path / "data", "follower", signal.SIGSTOP)

    lines = stdout.splitlines()
    assert status == 0, stdout + stderr
    assert (f"process paused from outside the run and not resumed: sync {follower}; the run resumed it to "
            "stop it") in lines
    assert "stopped by a signal from outside" not in stdout
    assert lines[-1] == "verification passed"


@pytest.mark.parametrize(("variable", "setting"), [("PORT", "--port / PORT"),
                                                   ("CLUSTER_PORT", "--cluster-port / CLUSTER_PORT")])
def test_node_port_in_use_rejected(tmp_path: Path, variable: str, setting: str) -> None:
    """A node whose port another process already uses stops with one line that names the port and the setting."""
    from cluster.launcher import free_ports

    client_port, cluster_port = free_ports(2)
    taken = client_port if variable == "PORT" else cluster_port
    env = {**os.environ, "LANG": "C.UTF-8", "ID": "1", "SYNC_NODES": f"127.0.0.1:{client_port}:{cluster_port}",
           "STORE_NODES": "127.0.0.1:1:2", "PORT": str(client_port), "CLUSTER_PORT": str(cluster_port),
           "DATA_DIR": str(tmp_path), "CLUSTER_KEY": "ab" * 32}
    for name in ("LANGUAGE", "LC_ALL", "LC_MESSAGES"):
        env.pop(name, None)
    with socket.create_server(("127.0.0.1", taken)):
        result = subprocess.run([sys.executable, "-m", "cluster", "sync", "--bind", "127.0.0.1"], env=env,
                                capture_output=True, text=True, timeout=60)

    assert result.returncode == 2
    assert result.stderr.strip() == (
        f"cluster: error: cannot listen on 127.0.0.1:{taken} ({setting}): another process already uses that "
        "port; stop it or choose another port")


def test_run_into_closed_pipe_stops_quietly(tmp_path: Path) -> None:
    """`cluster run | head -1` ends without a traceback, with the status of SIGPIPE, and stops every node."""
    data_dir = tmp_path / "data"
    process = subprocess.Popen(
        [sys.executable, "-m", "cluster", "run", "--sync", "3", "--store", "2", "--clients", "2",
         "--messages", "20000", "--data-dir", str(data_dir)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
    )
    try:
        assert process.stdout is not None
        assert process.stdout.readline().startswith("starting 3 sync nodes")
        process.stdout.close()
        _, stderr = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()

    assert process.returncode == 141
    assert "Traceback" not in stderr
    layout = json.loads((data_dir / "cluster.json").read_text(encoding="utf-8"))
    for address in layout["sync_nodes"] + layout["store_nodes"]:
        host, port, _cluster_port = address.split(":")
        with pytest.raises(ConnectionRefusedError), socket.create_connection((host, int(port)), timeout=2):
            pass


def test_damaged_file_still_gives_summary(tmp_path: Path) -> None:
    """A state file damaged during the run fails the verification with a summary, instead of ending without one."""
    data_dir = tmp_path / "data"
    process = subprocess.Popen(
        [sys.executable, "-m", "cluster", "run", "--sync", "3", "--store", "2", "--clients", "2",
         "--messages", "20000", "--data-dir", str(data_dir)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
    )
    try:
        wait_for(lambda: output_path(data_dir).exists() and output_path(data_dir).stat().st_size > 0, 60,
                 "the first committed message")
        layout = json.loads((data_dir / "cluster.json").read_text(encoding="utf-8"))
        store_port = int(layout["store_nodes"][1].split(":")[1])
        os.kill(_listening_pid(store_port), signal.SIGKILL)
        (data_dir / "store_2.state.json").write_text("{garbage", encoding="utf-8")
        stdout, stderr = process.communicate(timeout=180)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()

    lines = stdout.splitlines()
    assert process.returncode == 1, stdout + stderr
    assert "nodes stopped by a signal from outside the run: store 2 (ended by signal SIGKILL)" in lines
    assert "FAIL  DataFiles: every data file of the run can be read" in lines
    assert any(line.startswith(f"      - {data_dir / 'store_2.state.json'}: invalid state file") for line in lines)
    assert lines[-1] == "verification FAILED"


def test_no_leader_summary_says_so() -> None:
    text = _summary(settled=False, leader=False)

    assert "no leader was elected within 15 s" in text
    assert "did not catch up" not in text


def _summary(settled: bool, leader: bool = True) -> str:
    from cluster.cli import format_summary
    from cluster.core.messages import StatusReply
    from cluster.launcher import RunSummary
    from cluster.status import NodeStatus
    from cluster.verify import Report

    report = Report(checks=[], output_entries=10, sent=10, acknowledged=10, final_config=None, leaders=[])
    reply = StatusReply(role="leader", node=1, term=2, leader=1, epoch=1, primary=1, commit=10, log_len=10)
    status = NodeStatus("sync", 1, "127.0.0.1", 1, reply) if leader else None
    return format_summary(RunSummary(report, 10, 1.0, status, None, settled=settled))


def test_summary_names_nodes_that_stopped() -> None:
    from cluster.cli import format_report_text, format_summary
    from cluster.launcher import RunSummary
    from cluster.verify import Report

    report = Report(checks=[], output_entries=10, sent=10, acknowledged=10, final_config=None, leaders=[])
    summary = RunSummary(report, 10, 1.0, None, None,
                         exited=[("sync", 3, 1), ("store", 1, -11), ("store", 2, -9), ("sync", 4, 0)])
    text = format_summary(summary)

    assert ("nodes that stopped on their own: sync 3 (exit code 1), store 1 (ended by signal SIGSEGV); "
            "see logs/sync_3.log, logs/store_1.log in the data directory") in text
    assert ("nodes stopped by a signal from outside the run: store 2 (ended by signal SIGKILL), "
            "sync 4 (shut down after a stop signal)") in text
    assert format_report_text(summary).splitlines()[-1] == "run failed: 2 nodes stopped on their own"


def test_outside_stop_does_not_fail_run() -> None:
    from cluster.cli import format_report_text, format_summary
    from cluster.launcher import RunSummary
    from cluster.verify import Report

    report = Report(checks=[], output_entries=10, sent=10, acknowledged=10, final_config=None, leaders=[])
    summary = RunSummary(report, 10, 1.0, None, None, exited=[("sync", 2, -9)])

    assert summary.crashed == []
    assert "nodes stopped by a signal from outside the run: sync 2 (ended by signal SIGKILL)" in format_summary(summary)
    assert "stopped on their own" not in format_summary(summary)
    assert "run failed" not in format_report_text(summary)


def test_outside_pause_named_in_summary() -> None:
    from cluster.cli import format_report_text, format_summary
    from cluster.launcher import RunSummary
    from cluster.verify import Report

    report = Report(checks=[], output_entries=10, sent=10, acknowledged=10, final_config=None, leaders=[])
    summary = RunSummary(report, 10, 1.0, None, None, paused_outside=[("sync", 2), ("store", 1)])

    assert ("processes paused from outside the run and not resumed: sync 2, store 1; the run resumed them to stop "
            "them" in format_summary(summary))
    assert "run failed" not in format_report_text(summary)


def test_paused_lock_holder_named_in_summary() -> None:
    from cluster.cli import format_summary
    from cluster.launcher import RunSummary
    from cluster.status import NodeStatus
    from cluster.verify import Report

    report = Report(checks=[], output_entries=10, sent=10, acknowledged=10, final_config=None, leaders=[])
    summary = RunSummary(report, 10, 1.0, None, None, paused_outside=[("sync", 4)], paused_lock_holder=("sync", 4),
                         settled=False)
    summary.leader = NodeStatus("sync", 2, "127.0.0.1", 7002, None)

    lines = format_summary(summary).splitlines()
    assert ("sync 4 was paused while it held output.lock, so no later leader could append to output.txt or "
            "acknowledge messages until the run resumed it") in lines
    assert not any("did not catch up" in line for line in lines)


def test_outside_pause_of_client_named() -> None:
    from cluster.cli import format_report_text, format_summary
    from cluster.launcher import RunSummary
    from cluster.verify import Report

    report = Report(checks=[], output_entries=10, sent=12, acknowledged=10, final_config=None, leaders=[])
    summary = RunSummary(report, 10, 1.0, None, None, paused_outside=[("client", 3)], clients_finished=False)

    assert ("process paused from outside the run and not resumed: client 3; the run resumed it to stop it"
            in format_summary(summary))
    assert format_report_text(summary).splitlines()[-1] == (
        "run failed: some clients did not get every message acknowledged")


def test_summary_reports_unsettled_store() -> None:
    assert "did not catch up" in _summary(settled=False)
    assert "did not catch up" not in _summary(settled=True)


def test_failover_count_skips_epochs_never_ready(tmp_path: Path) -> None:
    """An epoch proposed but never made ready is not counted, and the summary names what it counts."""
    from cluster.cli import format_summary
    from cluster.launcher import RunOptions, RunSummary
    from cluster.run import _count_failovers
    from cluster.verify import Report

    options = RunOptions(sync=2, store=1, clients=0, data_dir=tmp_path)
    with EventLog(events_path(tmp_path, "sync", 1), 1) as log:
        log.write("became_leader", {"term": 1, "epoch": 0})
        log.write("epoch_ready", {"term": 1, "epoch": 1, "primary": 1, "last_seq": 0})
        log.write("config_proposed", {"term": 1, "epoch": 2, "primary": 1, "backups": [], "joining": []})
    with EventLog(events_path(tmp_path, "sync", 2), 2) as log:
        log.write("became_leader", {"term": 2, "epoch": 2})
        log.write("epoch_ready", {"term": 2, "epoch": 3, "primary": 1, "last_seq": 5})

    elections, epochs = _count_failovers(options)
    report = Report(checks=[], output_entries=5, sent=5, acknowledged=5, final_config=None, leaders=[])
    summary = format_summary(RunSummary(report, 5, 1.0, None, None, elections=elections, epochs=epochs))

    assert (elections, epochs) == (2, 2)
    assert "leader elections 2, store epochs made ready 2," in summary


def test_wait_settled_times_out_without_leader(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With no node running, wait_settled reports that the cluster did not settle."""
    from cluster import run
    from cluster.launcher import LocalCluster, RunOptions, prepare_data_dir

    options = RunOptions(sync=1, store=1, clients=0, data_dir=tmp_path / "data", fresh=True)
    prepare_data_dir(options)
    monkeypatch.setattr(run, "SETTLE_SECONDS", 0.2)

    result = run.wait_settled(LocalCluster(options))

    assert not result.settled
    assert result.leader is None


@pytest.mark.parametrize("command", ["run", "soak"])
def test_data_dir_under_file_rejected(tmp_path: Path, command: str) -> None:
    """A --data-dir that cannot be created is a usage error naming the path, not a traceback."""
    blocker = tmp_path / "file"
    blocker.write_text("not a directory\n", encoding="utf-8")
    data_dir = blocker / "data"

    result = run_cli(command, "--messages", "1", "--data-dir", str(data_dir))

    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "cannot create --data-dir" in result.stderr
    assert str(blocker) in result.stderr
    assert "pass a directory you can write to" in result.stderr


@pytest.mark.e2e
@pytest.mark.parametrize("ignored", [True, False], ids=["sigint-ignored", "sigint-default"])
def test_node_keeps_ignored_sigint(tmp_path: Path, ignored: bool) -> None:
    """A node started with SIGINT ignored, as `cluster run` starts its nodes, leaves Ctrl-C to its parent.

    Started with SIGINT at its default, as on a terminal, the node stops on it.
    """
    from cluster.launcher import free_ports

    port, cluster_port = free_ports(2)
    disposition = signal.SIG_IGN if ignored else signal.SIG_DFL
    process = subprocess.Popen(
        [sys.executable, "-m", "cluster", "store", "--id", "1", "--port", str(port), "--cluster-port",
         str(cluster_port), "--sync-nodes", "127.0.0.1:1:2", "--store-nodes", f"127.0.0.1:{port}:{cluster_port}",
         "--bind", "127.0.0.1", "--data-dir", str(tmp_path)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, disposition),
    )
    try:
        def listening() -> bool:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
                return True
            return False

        wait_for(listening, 30, "the store node's client port")
        process.send_signal(signal.SIGINT)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=2)
        running_after_sigint = process.poll() is None
    finally:
        process.terminate()
        _stdout, stderr = process.communicate(timeout=30)

    assert running_after_sigint == ignored
    assert process.returncode == 0, stderr


def test_start_line_counts_in_singular(tmp_path: Path) -> None:
    result = run_cli("run", "--sync", "3", "--store", "1", "--clients", "1", "--messages", "2",
                     "--data-dir", str(tmp_path / "data"))

    assert result.returncode == 0, result.stdout + result.stderr
    first_line = result.stdout.splitlines()[0]
    assert first_line == f"starting 3 sync nodes, 1 store node and 1 client; data in {tmp_path / 'data'}"


def test_listen_error_for_unknown_name() -> None:
    import socket

    from cluster.cli import describe_listen_error
    from cluster.node.runtime import ListenError

    error = ListenError("cluster", "no-such-host.invalid", 7101, socket.gaierror(-2, "Name or service not known"))

    assert describe_listen_error(error) == (
        "cannot listen on no-such-host.invalid:7101 (--cluster-port / CLUSTER_PORT): the name no-such-host.invalid "
        "does not resolve to an address of this machine; pass --bind an IP address of this machine, or 0.0.0.0 for "
        "all of them")


def test_same_port_for_clients_and_peers_rejected(tmp_path: Path) -> None:
    env = {**os.environ, "LANG": "C.UTF-8", "ID": "1", "SYNC_NODES": "127.0.0.1:7001:7001",
           "STORE_NODES": "127.0.0.1:1:2", "PORT": "7001", "CLUSTER_PORT": "7001", "DATA_DIR": str(tmp_path),
           "CLUSTER_KEY": "ab" * 32}
    for name in ("LANGUAGE", "LC_ALL", "LC_MESSAGES"):
        env.pop(name, None)

    result = subprocess.run([sys.executable, "-m", "cluster", "sync", "--bind", "127.0.0.1"], env=env,
                            capture_output=True, text=True, timeout=60)

    assert result.returncode == 2
    assert result.stderr.strip() == (
        "cluster: error: PORT and CLUSTER_PORT are both 7001; a node listens for clients and for peers on two "
        "different ports, so give them different values")
