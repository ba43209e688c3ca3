"""Tests of `cluster diagram`: the SVG's structure, the filters and the two kinds of source."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from cluster.cli import main
from cluster.core.bugs import Bug
from cluster.sim.runner import SimConfig
from cluster.sim.scheduler import simulate
from cluster.sim.trace import write_trace

SVG = "{http://www.w3.org/2000/svg}"
BASE_TIME = 1_800_000_000.0


def _write_log(path: Path, node: int, records: list[tuple[float, str, dict[str, object]]]) -> None:
    lines = [json.dumps({"time": BASE_TIME + time, "node": node, "event": event, **fields})
             for time, event, fields in records]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    """A data directory of 3 sync nodes, 2 store nodes and 1 client, in which sync 1 led term 1 and was killed."""
    data = tmp_path / "run"
    data.mkdir()
    _write_log(data / "events_sync_1.jsonl", 1, [
        (0.00, "started", {"port": 1, "cluster_port": 2}),
        (0.10, "became_candidate", {"term": 1}),
        (0.12, "became_leader", {"term": 1, "epoch": 0}),
        (0.13, "epoch_installing", {"term": 1, "epoch": 1}),
        (0.16, "epoch_ready", {"term": 1, "epoch": 1, "primary": 1, "last_seq": 0}),
        (0.30, "commit", {"term": 1, "first_seq": 1, "last_seq": 2}),
        (0.90, "started", {"port": 1, "cluster_port": 2}),
        (0.95, "became_follower", {"term": 2, "leader": 2}),
        (1.50, "stopped", {}),
    ])
    _write_log(data / "events_sync_2.jsonl", 2, [
        (0.01, "started", {"port": 3, "cluster_port": 4}),
        (0.11, "vote_granted", {"term": 1, "candidate": 1}),
        (0.14, "became_follower", {"term": 1, "leader": 1}),
        (0.60, "became_candidate", {"term": 2}),
        (0.62, "became_leader", {"term": 2, "epoch": 1}),
        (0.70, "commit", {"term": 2, "first_seq": 3, "last_seq": 3}),
        (1.50, "stopped", {}),
    ])
    _write_log(data / "events_sync_3.jsonl", 3, [
        (0.02, "started", {"port": 5, "cluster_port": 6}),
        (0.11, "vote_granted", {"term": 1, "candidate": 1}),
        (0.15, "became_follower", {"term": 1, "leader": 1}),
        (0.61, "vote_granted", {"term": 2, "candidate": 2}),
        (0.63, "became_follower", {"term": 2, "leader": 2}),
        (1.50, "stopped", {}),
    ])
    _write_log(data / "events_store_1.jsonl", 1, [
        (0.03, "started", {"port": 7, "cluster_port": 8}),
        (0.15, "epoch_installed", {"epoch": 1, "role": "primary", "leader_term": 1, "primary": 1, "backups": [2]}),
        (1.50, "stopped", {}),
    ])
    _write_log(data / "events_store_2.jsonl", 2, [
        (0.04, "started", {"port": 9, "cluster_port": 10}),
        (0.15, "epoch_installed", {"epoch": 1, "role": "backup", "leader_term": 1, "primary": 1, "backups": [2]}),
        (1.50, "stopped", {}),
    ])
    _write_log(data / "client_1.jsonl", 1, [
        (0.20, "started", {"messages": 3}),
        (0.21, "sent", {"request_id": 1, "lamport": 1, "text": "a"}),
        (0.31, "acked", {"request_id": 1, "seq": 1, "term": 1, "lamport": 2}),
        (0.32, "acked", {"request_id": 2, "seq": 2, "term": 1, "lamport": 3}),
        (0.71, "acked", {"request_id": 3, "seq": 3, "term": 2, "lamport": 5}),
        (0.72, "finished", {"acknowledged": 3, "seconds": 0.5}),
    ])
    return data


def _draw(source: Path, output: Path, *options: str) -> ET.Element:
    code = main(["diagram", str(source), "-o", str(output), *options])
    assert code == 0
    return ET.parse(output).getroot()


def _groups(root: ET.Element, css_class: str) -> list[ET.Element]:
    return [element for element in root.iter(f"{SVG}g") if css_class in element.get("class", "").split()]


def _marks(root: ET.Element, kind: str) -> list[str]:
    return sorted(str(mark.get("data-node")) for mark in _groups(root, "mark") if mark.get("data-kind") == kind)


def test_run_lanes_one_per_node(run_dir: Path, tmp_path: Path) -> None:
    root = _draw(run_dir, tmp_path / "d.svg")

    lanes = [lane.get("data-node") for lane in _groups(root, "lane")]

    assert lanes == ["sync 1", "sync 2", "sync 3", "store 1", "store 2", "client 1"]
    for lane in _groups(root, "lane"):
        assert lane.find(f"{SVG}line") is not None
        assert lane.findtext(f"{SVG}text") == lane.get("data-node")


def test_run_arrows_have_labels(run_dir: Path, tmp_path: Path) -> None:
    root = _draw(run_dir, tmp_path / "d.svg")

    messages = _groups(root, "message")

    assert {message.get("data-type") for message in messages} == {
        "VoteReply", "Heartbeat", "NewEpoch", "EpochReady", "ClientReply"}
    for message in messages:
        assert message.find(f"{SVG}line") is not None
        assert str(message.findtext(f"{SVG}text")).startswith(str(message.get("data-type")))
    votes = [(m.get("data-from"), m.get("data-to")) for m in messages if m.get("data-type") == "VoteReply"]
    assert sorted(votes) == [("sync 2", "sync 1"), ("sync 3", "sync 1"), ("sync 3", "sync 2")]
    replies = [m.get("data-from") for m in messages if m.get("data-type") == "ClientReply"]
    assert replies == ["sync 1", "sync 1", "sync 2"]


def test_run_marks_elections_and_crash(run_dir: Path, tmp_path: Path) -> None:
    root = _draw(run_dir, tmp_path / "d.svg")

    assert _marks(root, "election") == ["sync 1", "sync 2"]
    assert _marks(root, "leader") == ["sync 1", "sync 2"]
    assert _marks(root, "crash") == ["sync 1"]
    assert _marks(root, "restart") == ["sync 1"]
    assert _marks(root, "commit") == ["sync 1", "sync 2"]
    assert "sync 1" in _marks(root, "term")


def test_types_filter_keeps_named_types(run_dir: Path, tmp_path: Path) -> None:
    everything = _draw(run_dir, tmp_path / "all.svg")
    votes = _draw(run_dir, tmp_path / "votes.svg", "--types", "VoteReply,NewEpoch")

    kept = [str(message.get("data-type")) for message in _groups(votes, "message")]

    assert len(_groups(everything, "message")) == 13
    assert sorted(kept) == ["NewEpoch", "NewEpoch", "VoteReply", "VoteReply", "VoteReply"]
    assert len(_groups(votes, "mark")) == len(_groups(everything, "mark"))


def test_window_filter_keeps_overlapping(run_dir: Path, tmp_path: Path) -> None:
    root = _draw(run_dir, tmp_path / "window.svg", "--from", "0.5", "--to", "0.8")

    messages = _groups(root, "message")
    mark_kinds = sorted(str(mark.get("data-kind")) for mark in _groups(root, "mark"))

    # The heartbeat that reaches the restarted sync 1 at 0.95 s is sent at 0.62 s, inside the window.
    assert sorted(str(m.get("data-type")) for m in messages) == ["ClientReply", "Heartbeat", "Heartbeat", "VoteReply"]
    assert mark_kinds == ["commit", "election", "leader", "term", "vote"]


def test_cap_notes_left_out_arrows(run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = _draw(run_dir, tmp_path / "cap.svg", "--max-arrows", "4")

    notes = [str(text.text) for text in root.iter(f"{SVG}text") if text.get("class") == "note"]

    assert len(_groups(root, "message")) == 4
    assert any(note.startswith("9 arrows left out") for note in notes)
    assert "9 arrows left out" in capsys.readouterr().out


def test_unknown_type_rejected(run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["diagram", str(run_dir), "-o", str(tmp_path / "d.svg"), "--types", "Nope"])

    error = capsys.readouterr().err
    assert code == 2
    assert "Nope" in error
    assert "VoteReply" in error
    assert not (tmp_path / "d.svg").exists()


def test_bad_output_suffix_rejected(run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["diagram", str(run_dir), "-o", str(tmp_path / "d.png")])

    assert code == 2
    assert ".svg or .html" in capsys.readouterr().err


def test_missing_source_rejected(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["diagram", str(tmp_path / "absent"), "-o", str(tmp_path / "d.svg")])

    assert code == 2
    assert "not found" in capsys.readouterr().err


def test_errors_name_diagram_command(run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["diagram", str(run_dir), "-o", str(tmp_path / "d.png")])

    assert code == 2
    assert capsys.readouterr().err.startswith("cluster diagram: error: ")


def test_trace_invalid_config_rejected(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    trace = tmp_path / "trace.json"
    trace.write_text(json.dumps({
        "format": "cluster-sim-trace", "version": 1, "seed": 1, "events": [],
        "config": {"sync": -3, "store": 3, "clients": 1, "messages": 1, "steps": 10},
    }), encoding="utf-8")

    code = main(["diagram", str(trace), "-o", str(tmp_path / "d.svg")])

    assert code == 2
    assert capsys.readouterr().err.strip() == (
        f'cluster diagram: error: {trace} is invalid: "config.sync" must be an integer from 1 to 15, found -3')
    assert not (tmp_path / "d.svg").exists()


def test_output_deterministic(run_dir: Path, tmp_path: Path) -> None:
    for name in ("a.html", "b.html"):
        assert main(["diagram", str(run_dir), "-o", str(tmp_path / name)]) == 0

    assert (tmp_path / "a.html").read_bytes() == (tmp_path / "b.html").read_bytes()


def test_html_embeds_svg_and_legend(run_dir: Path, tmp_path: Path) -> None:
    output = tmp_path / "d.html"
    assert main(["diagram", str(run_dir), "-o", str(output)]) == 0

    page = output.read_text(encoding="utf-8")

    assert page.startswith("<!DOCTYPE html>")
    assert page.count("<svg") >= 2  # the diagram and the legend's symbols
    assert 'class="legend"' in page
    assert "VoteReply" in page
    assert "http://" not in page.replace("http://www.w3.org/2000/svg", "")
    assert "<script" not in page


@pytest.fixture(scope="module")
def crash_trace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A simulator trace with a crash, written by the simulator itself."""
    config = SimConfig(faults=frozenset({"crash", "restart"}), bugs=frozenset({Bug.EARLY_ACK}), steps=800)
    for seed in range(40):
        result = simulate(config, seed)
        if any(event.op == "crash" for event in result.events):
            path = tmp_path_factory.mktemp("trace") / f"seed{seed}.json"
            write_trace(path, result)
            return path
    raise AssertionError("no seed from 0 to 39 crashed a node; check the fault injector")


def test_trace_lanes_and_messages(crash_trace: Path, tmp_path: Path) -> None:
    data = json.loads(crash_trace.read_text(encoding="utf-8"))
    root = _draw(crash_trace, tmp_path / "t.svg", "--max-arrows", "100000")

    lanes = [lane.get("data-node") for lane in _groups(root, "lane")]
    types = {message.get("data-type") for message in _groups(root, "message")}
    delivered = sum(1 for event in data["events"] if event["op"] == "deliver")
    drawn = sum(1 for message in _groups(root, "message") if message.get("data-fate") == "delivered")

    config = data["config"]
    assert len(lanes) == config["sync"] + config["store"] + config["clients"]
    assert {"RequestVote", "VoteReply", "Heartbeat", "ClientRequest"} <= types
    assert drawn == delivered


def test_trace_marks_crash_and_election(crash_trace: Path, tmp_path: Path) -> None:
    data = json.loads(crash_trace.read_text(encoding="utf-8"))
    root = _draw(crash_trace, tmp_path / "t.svg")

    crashed = sorted({event["node"] for event in data["events"] if event["op"] == "crash"})

    assert sorted(set(_marks(root, "crash"))) == crashed
    assert _marks(root, "election")
    assert _marks(root, "leader")


def test_trace_window_is_in_steps(crash_trace: Path, tmp_path: Path) -> None:
    everything = _draw(crash_trace, tmp_path / "all.svg", "--max-arrows", "100000")
    early = _draw(crash_trace, tmp_path / "early.svg", "--to", "50", "--max-arrows", "100000")

    assert 0 < len(_groups(early, "message")) < len(_groups(everything, "message"))


# --- Invalid log lines and empty selections ----------------------------------------------


def _insert_line(path: Path, index: int, line: str) -> None:
    """Insert `line` before line `index` (0-based) of `path`."""
    lines = path.read_text(encoding="utf-8").splitlines()
    lines.insert(index, line)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


@pytest.mark.parametrize(
    ("file", "line", "reason"),
    [
        ("events_sync_1.jsonl", '{"time": 1800000000.1, "node": 1, "eve', "line is not valid JSON"),
        ("client_1.jsonl", "[1, 2]", "line is not a JSON object"),
        ("events_store_2.jsonl", '{"time": NaN, "node": 2, "event": "started"}',
         'record has no valid "time" (a number of seconds), found nan'),
        ("events_sync_3.jsonl", '{"time": 1800000000.1, "node": 3}', 'record has no "event"'),
    ],
    ids=["cut", "array", "nan time", "no event"],
)
def test_invalid_line_warned_by_location(
    run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], file: str, line: str, reason: str
) -> None:
    _insert_line(run_dir / file, 1, line)

    root = _draw(run_dir, tmp_path / "d.svg")

    captured = capsys.readouterr()
    notes = [str(text.text) for text in root.iter(f"{SVG}text") if text.get("class") == "note"]
    assert captured.err == f"cluster diagram: warning: {run_dir / file}:2: {reason}; skipped this line\n"
    assert f"1 invalid log lines were skipped, the first at {file}:2; the diagram may miss their events." in notes
    assert len(_groups(root, "lane")) == 6


def test_lane_kept_when_every_line_invalid(run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (run_dir / "events_store_2.jsonl").write_text("garbage\n", encoding="utf-8")

    root = _draw(run_dir, tmp_path / "d.svg")

    lanes = [lane.get("data-node") for lane in _groups(root, "lane")]
    assert lanes == ["sync 1", "sync 2", "sync 3", "store 1", "store 2", "client 1"]
    assert "events_store_2.jsonl:1: line is not valid JSON" in capsys.readouterr().err


def test_cut_last_line_noted_not_warned(run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with (run_dir / "events_sync_2.jsonl").open("a", encoding="utf-8") as file:
        file.write('{"time": 1800000001.6, "node": 2, "ev')

    root = _draw(run_dir, tmp_path / "d.svg")

    notes = [str(text.text) for text in root.iter(f"{SVG}text") if text.get("class") == "note"]
    assert capsys.readouterr().err == ""
    assert "1 unreadable log lines were skipped (partial lines left by killed nodes)." in notes


def test_invalid_line_warnings_capped(run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for _ in range(12):
        _insert_line(run_dir / "client_1.jsonl", 0, "not json")

    _draw(run_dir, tmp_path / "d.svg")

    warnings = capsys.readouterr().err.splitlines()
    assert len(warnings) == 11
    assert warnings[-1] == "cluster diagram: warning: ... and 2 more invalid log lines, also skipped"


def test_only_invalid_lines_rejected(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "run"
    data.mkdir()
    (data / "events_sync_1.jsonl").write_text("garbage\n{}\n", encoding="utf-8")

    code = main(["diagram", str(data), "-o", str(tmp_path / "d.svg")])

    assert code == 2
    assert capsys.readouterr().err == (f"cluster diagram: error: {data / 'events_sync_1.jsonl'}:1: line is not valid "
                                       f"JSON; no log in {data} has a valid record\n")


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--from", "nan"], "invalid --from nan: expected a time of 0 or more"),
        (["--from", "-1"], "invalid --from -1: expected a time of 0 or more"),
        (["--to", "inf"], "invalid --to inf: expected a time of 0 or more"),
        (["--types", ""], "--types '' names no message type"),
        (["--types", " , "], "--types ' , ' names no message type"),
    ],
    ids=["nan", "negative", "infinite", "empty types", "blank types"],
)
def test_invalid_filter_rejected(
    run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], options: list[str], message: str
) -> None:
    code = main(["diagram", str(run_dir), "-o", str(tmp_path / "d.svg"), *options])

    assert code == 2
    assert capsys.readouterr().err.startswith(f"cluster diagram: error: {message}")
    assert not (tmp_path / "d.svg").exists()


def test_empty_window_explained(run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = _draw(run_dir, tmp_path / "d.svg", "--from", "1e9")

    expected = "note: nothing matches --from 1e+09: the run covers 0 s to 1.5 s after its first event"
    notes = [str(text.text) for text in root.iter(f"{SVG}text") if text.get("class") == "note"]
    assert capsys.readouterr().out.splitlines()[-1] == expected
    assert expected in notes


def test_nonempty_window_has_no_note(run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _draw(run_dir, tmp_path / "d.svg", "--from", "0.5")

    assert "nothing matches" not in capsys.readouterr().out


def test_empty_trace_window_in_steps(crash_trace: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    steps = len(json.loads(crash_trace.read_text(encoding="utf-8"))["events"])

    _draw(crash_trace, tmp_path / "d.svg", "--from", "1e9", "--types", "VoteReply")

    assert capsys.readouterr().out.splitlines()[-1] == (
        f"note: nothing matches --from 1e+09 --types VoteReply: the trace covers steps 0 to {steps}")
