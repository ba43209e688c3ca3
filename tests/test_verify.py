"""`cluster verify` on directories that are not a run's, and on data files that a node would reject."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from cluster.files import DataFileError
from cluster.verify import verify

ENGLISH = {"LANG": "C.UTF-8"}
PORTUGUESE = {"LANG": "pt_BR.UTF-8", "LC_ALL": "pt_BR.UTF-8"}
RESTORE_HINT = "Restore this node's data files from a copy"
RESET_HINT = "to reset the node, stop it and delete this file"


def run_cli(*args: str, cwd: Path | None = None, locale: dict[str, str] = ENGLISH) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items()
           if key not in ("LANG", "LANGUAGE", "LC_ALL", "LC_MESSAGES")}
    env.update(locale)
    return subprocess.run([sys.executable, "-m", "cluster", *args], capture_output=True, text=True, timeout=120,
                          cwd=cwd, env=env, check=False)


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Return the data directory of one small real run with two store nodes, shared by the tests of this module."""
    data_dir = tmp_path_factory.mktemp("finished") / "data"
    result = run_cli("run", "--sync", "1", "--store", "2", "--clients", "1", "--messages", "5", "--seed", "3",
                     "--data-dir", str(data_dir))
    assert result.returncode == 0, result.stdout + result.stderr
    return data_dir


@pytest.fixture
def run_copy(finished_run: Path, tmp_path: Path) -> Path:
    """Return a copy of the finished run that a test may break."""
    copy = tmp_path / "data"
    shutil.copytree(finished_run, copy)
    return copy


# --- Directories that are not the data directory of a run ------------------------------------


def test_missing_directory_names_dir_argument(tmp_path: Path) -> None:
    result = run_cli("verify", str(tmp_path / "nope"))

    assert result.returncode == 2
    assert str(tmp_path / "nope") in result.stderr
    assert "give `cluster verify` the data directory of a finished run" in result.stderr
    assert "--data-dir" not in result.stderr


def test_missing_directory_portuguese(tmp_path: Path) -> None:
    result = run_cli("verify", str(tmp_path / "nope"), locale=PORTUGUESE)

    assert result.returncode == 2
    assert "passe ao `cluster verify` o diretório de dados de uma execução terminada" in result.stderr
    assert "--data-dir" not in result.stderr


def test_empty_directory_rejected(tmp_path: Path) -> None:
    result = run_cli("verify", str(tmp_path))

    assert result.returncode == 2
    assert str(tmp_path) in result.stderr
    assert "has no cluster.json" in result.stderr
    assert "verification passed" not in result.stdout


def test_directory_of_nodes_started_by_hand_accepted(run_copy: Path) -> None:
    """Nodes started with `cluster sync` and `cluster store` write no cluster.json; their files are enough."""
    (run_copy / "cluster.json").unlink()

    result = run_cli("verify", str(run_copy))

    assert result.returncode == 0, result.stdout + result.stderr
    assert "verification passed" in result.stdout


def test_current_directory_without_layout_rejected(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("not a run\n", encoding="utf-8")

    result = run_cli("verify", ".", cwd=tmp_path)

    assert result.returncode == 2
    assert "has no cluster.json" in result.stderr
    assert "verification passed" not in result.stdout


# --- Data files that a node would reject ----------------------------------------------------------


@pytest.mark.parametrize("locale", [ENGLISH, PORTUGUESE], ids=["en", "pt_BR"])
def test_running_cluster_directory_rejected(run_copy: Path, locale: dict[str, str]) -> None:
    """While a run holds run.lock, its files are still changing, so verify refuses rather than report on them."""
    from cluster.launcher import lock_data_dir

    before = {path.name: path.read_bytes() for path in run_copy.iterdir() if path.is_file()}
    with lock_data_dir(run_copy):
        rejected = run_cli("verify", str(run_copy), locale=locale)
    after_release = run_cli("verify", str(run_copy), locale=locale)

    assert rejected.returncode == 2
    assert rejected.stdout == ""
    assert str(run_copy) in rejected.stderr
    if locale is ENGLISH:
        assert "is in use by a running cluster" in rejected.stderr
        assert "wait for `cluster run` to finish, or stop its node processes, then verify again" in rejected.stderr
    else:
        assert "está em uso por um cluster em execução" in rejected.stderr
    assert {path.name: path.read_bytes() for path in run_copy.iterdir() if path.is_file()} == before
    assert after_release.returncode == 0, after_release.stdout + after_release.stderr


def _first_wal(data_dir: Path) -> Path:
    return sorted(data_dir.glob("store_*.wal"))[0]


def _replace_first_seq(value: str) -> Callable[[Path], Path]:
    def corrupt(data_dir: Path) -> Path:
        wal = _first_wal(data_dir)
        lines = wal.read_text(encoding="utf-8").splitlines(keepends=True)
        lines[0] = value + lines[0][lines[0].index("\t"):]
        wal.write_text("".join(lines), encoding="utf-8")
        return wal
    return corrupt


def _shorten_wal(data_dir: Path) -> Path:
    wal = _first_wal(data_dir)
    first_line = wal.read_text(encoding="utf-8").splitlines(keepends=True)[0]
    wal.write_text(first_line, encoding="utf-8")
    return data_dir / wal.name.replace("store_", "backup_").replace(".wal", ".txt")


def _write(name: str, content: str) -> Callable[[Path], Path]:
    def corrupt(data_dir: Path) -> Path:
        path = data_dir / name
        assert path.exists(), f"the run wrote no {name}"
        path.write_text(content, encoding="utf-8")
        return path
    return corrupt


# (case, how to break the copy and which file then fails, expected problem, expected fix)
BROKEN_FILES = [
    ("fence garbage", _write("output.fence", "garbage\n"), "expected a decimal term",
     "restore it from the highest leader term"),
    ("wal seq wrong", _replace_first_seq("2"), "expected sequence number 1, found 2", RESTORE_HINT),
    ("wal seq not numeric", _replace_first_seq("one"), "seq must be a non-negative decimal integer", RESTORE_HINT),
    ("wal shorter than backup", _shorten_wal, "committed entries, but", RESTORE_HINT),
    ("sync state not json", _write("sync_1.state.json", "{not json"), "invalid state file", RESET_HINT),
    ("sync state not object", _write("sync_1.state.json", "[1, 2]\n"), "expected a JSON object, found [1, 2]",
     RESET_HINT),
    ("store state not json", _write("store_2.state.json", ""), "invalid state file", RESTORE_HINT),
    ("store state not object", _write("store_1.state.json", "7\n"), "expected a JSON object, found 7",
     RESTORE_HINT),
    ("sync state field wrong", _write("sync_1.state.json", '{"term": "x", "voted_for": -5, "config": 7}'),
     '"term" must be an integer from 0 to', RESET_HINT),
    ("store primary out of range", _write("store_1.state.json", '{"leader_term": 1, "config": {"epoch": 1, '
                                          '"term": 1, "primary": -1, "backups": [2, 2]}}'),
     '"config.primary" must be the id of a store node', RESTORE_HINT),
]


@pytest.mark.e2e
def test_finished_run_passes(run_copy: Path) -> None:
    report = verify(run_copy)

    failed = {check.name: check.violations for check in report.checks if not check.passed}
    assert failed == {}
    assert report.output_entries == 5


@pytest.mark.e2e
@pytest.mark.parametrize(("corrupt", "problem", "fix"), [case[1:] for case in BROKEN_FILES],
                         ids=[case[0] for case in BROKEN_FILES])
def test_broken_file_rejected(run_copy: Path, corrupt: Callable[[Path], Path], problem: str, fix: str) -> None:
    broken = corrupt(run_copy)

    with pytest.raises(DataFileError) as error:
        verify(run_copy)

    assert error.value.path == broken
    assert problem in error.value.reason
    assert fix in error.value.reason


@pytest.mark.e2e
def test_broken_wal_cli_message(run_copy: Path) -> None:
    """The CLI prints the file, the line, the problem and the fix, and exits with 2."""
    wal = _replace_first_seq("2")(run_copy)

    result = run_cli("verify", str(run_copy))

    assert result.returncode == 2
    assert result.stderr.startswith(f"cluster: error: {wal}:1: expected sequence number 1, found 2. ")
    assert RESTORE_HINT in result.stderr
    assert "verification passed" not in result.stdout


@pytest.mark.e2e
def test_partial_wal_line_left_in_place(run_copy: Path) -> None:
    """A partial last line, which a node cuts off at start, passes and stays, because verify only reads."""
    wal = _first_wal(run_copy)
    with wal.open("ab") as file:
        file.write(b"6\t1\t9")
    before = wal.read_bytes()

    report = verify(run_copy)

    assert report.passed
    assert wal.read_bytes() == before
