"""Damaged data files stop a node with one clear error, at start-up where possible.

The node process objects here are the real ones, built on real files in a
temporary data directory, and the last test starts a real node process.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
from pathlib import Path

import pytest

from cluster.core.effects import AppendOutput
from cluster.core.messages import Entry
from cluster.files import DataFileError
from cluster.launcher import EXIT_DATA_FILE_ERROR, LocalCluster, RunOptions, prepare_data_dir
from cluster.net.auth import KeyRing
from cluster.node.settings import NodeAddress, NodeSettings
from cluster.node.store_process import StoreRuntime
from cluster.node.sync_process import SyncRuntime


def _settings(role: str, data_dir: Path) -> NodeSettings:
    addresses = tuple(NodeAddress("127.0.0.1", 7000 + 2 * node, 7001 + 2 * node) for node in range(3))
    keys = KeyRing((b"0123456789abcdef0123456789abcdef",), "test key")
    return NodeSettings(role, 1, addresses, addresses, data_dir, keys=keys)


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("output.fence", b"garbage\xff", "expected a decimal term"),
        ("output.txt", b"this is not a valid line\n",
         "copy the damaged line from the same line of a store node's backup file"),
    ],
)
def test_sync_start_rejects_damaged_output(tmp_path: Path, name: str, content: bytes, expected: str) -> None:
    (tmp_path / name).write_bytes(content)

    with pytest.raises(DataFileError) as caught:
        SyncRuntime(_settings("sync", tmp_path))

    assert caught.value.path == tmp_path / name
    assert expected in str(caught.value)


def test_bad_wal_line_names_repair(tmp_path: Path) -> None:
    (tmp_path / "store_1.wal").write_text("1\t1\t2\t1\t1\ta\n3\t1\t3\t1\t2\tb\n", encoding="utf-8")

    with pytest.raises(DataFileError) as caught:
        StoreRuntime(_settings("store", tmp_path))

    assert caught.value.line_number == 2
    assert "Restore this node's data files from a copy" in str(caught.value)


def test_sync_start_skips_check_while_lock_held(tmp_path: Path) -> None:
    """A paused leader may hold output.lock for good, so the check must not wait for it."""
    (tmp_path / "output.fence").write_bytes(b"garbage")
    holder = os.open(tmp_path / "output.lock", os.O_RDWR | os.O_CREAT, 0o644)
    fcntl.flock(holder, fcntl.LOCK_EX)
    try:
        runtime = SyncRuntime(_settings("sync", tmp_path))
    finally:
        os.close(holder)

    runtime.events.close()


MAX = 2**63 - 1


@pytest.mark.parametrize(
    ("role", "content", "expected"),
    [
        ("sync", "{}", 'the field "term" is missing; a sync state file holds {"term": N, "voted_for": ID or null, '),
        ("sync", '{"term": 1, "voted_for": 1, "config": 7}', '"config" must be a JSON object, found 7; '),
        ("sync", '{"term": "abc", "voted_for": null}', f'"term" must be an integer from 0 to {MAX}, found "abc"; '),
        ("sync", '{"term": 1, "voted_for": "x"}',
         '"voted_for" must be null or the id of a sync node, from 1 to 3, found "x"; '),
        ("sync", '{"term": 1, "voted_for": null, "config": {"epoch": 1, "term": 1, "primary": true, "backups": []}}',
         '"config.primary" must be the id of a store node, from 1 to 3, found true; '),
        ("store", "{}", 'the field "leader_term" is missing; a store state file holds {"leader_term": N, '),
        ("store", '{"leader_term": 2, "config": 5}', '"config" must be a JSON object, found 5; '),
        ("store", '{"leader_term": 2, "synced_epoch": 1.5, "config": 5}', '"synced_epoch" must be an integer from 0 '),
        ("sync", '{"term": 1, "voted_for": 9}',
         '"voted_for" must be null or the id of a sync node, from 1 to 3, found 9; '),
        ("store", '{"leader_term": 1, "config": {"epoch": 1, "term": 1, "primary": 4, "backups": []}}',
         '"config.primary" must be the id of a store node, from 1 to 3, found 4; '),
        ("store", '{"leader_term": 1, "config": {"epoch": 1, "term": 1, "primary": 1, "backups": [2, 2]}}',
         '"config.backups" must be a list of distinct store node ids, from 1 to 3, without the primary, '
         'found [2, 2]; '),
        ("store", '{"leader_term": 1, "config": {"epoch": 1, "term": 1, "primary": 1, "backups": [1]}}',
         '"config.backups" must be a list of distinct store node ids'),
        ("store", '{"leader_term": 1, "config": {"epoch": 1, "term": 1, "primary": 1, "backups": [2], "joining": [3]}}',
         '"config.joining" may list only nodes of "config.backups", found [3]; '),
        ("store", '{"leader_term": 1000000000000000000000000000000, "config": 5}',
         f'"leader_term" must be an integer from 0 to {MAX}, found 1000000000000000000000000000000; '),
        ("sync", "[" * 100000 + "]" * 100000, "invalid state file (nested too deeply, or a number too long)"),
        ("sync", '{"term": ' + "1" * 5001 + "}", "invalid state file (nested too deeply, or a number too long)"),
    ],
)
def test_state_file_with_bad_fields(tmp_path: Path, role: str, content: str, expected: str) -> None:
    path = tmp_path / f"{role}_1.state.json"
    path.write_text(content, encoding="utf-8")
    runtime_class = SyncRuntime if role == "sync" else StoreRuntime

    with pytest.raises(DataFileError) as caught:
        runtime_class(_settings(role, tmp_path))

    assert caught.value.path == path
    assert expected in str(caught.value)


def test_store_state_hint_names_store_files(tmp_path: Path) -> None:
    (tmp_path / "store_1.state.json").write_text("[]", encoding="utf-8")

    with pytest.raises(DataFileError) as caught:
        StoreRuntime(_settings("store", tmp_path))

    assert "Restore this node's data files from a copy" in str(caught.value)
    assert "vote" not in str(caught.value)


def test_damaged_fence_during_run_stops_node(tmp_path: Path) -> None:
    """A leader whose append finds a damaged fence stops with that error instead of a traceback."""
    runtime = SyncRuntime(_settings("sync", tmp_path))
    (tmp_path / "output.fence").write_bytes(b"garbage")
    entry = Entry(1, 1, 1, 7, 1, "hello")

    async def run() -> None:
        rounds = asyncio.create_task(runtime._rounds())
        runtime.submit([AppendOutput(1, (entry,))])
        await asyncio.wait_for(rounds, 5)

    asyncio.run(run())
    runtime.events.close()

    assert isinstance(runtime.failure, DataFileError)
    assert runtime.failure.path == tmp_path / "output.fence"
    assert runtime.stopping.is_set()


def test_node_process_exits_with_one_line(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    options = RunOptions(sync=1, store=1, clients=0, data_dir=tmp_path / "data", fresh=True)
    prepare_data_dir(options)
    (options.data_dir / "output.fence").write_bytes(b"garbage")
    cluster = LocalCluster(options)
    cluster.write_layout()

    cluster.start("sync", 1)
    process = cluster.processes[("sync", 1)]
    process.join(30)

    assert process.exitcode == EXIT_DATA_FILE_ERROR
    stderr = capfd.readouterr().err
    assert "Traceback" not in stderr
    assert f"sync 1: {options.data_dir / 'output.fence'}: expected a decimal term" in stderr
