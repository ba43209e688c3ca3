"""Tests of per-message arrows: `cluster run --trace-messages` logs and their pairing in `cluster diagram`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

from cluster.diagram.model import Lane
from cluster.diagram.run_logs import load_run_directory

SVG = "{http://www.w3.org/2000/svg}"
BASE_TIME = 1_800_000_000.0
RUN_SECONDS = 120


def _cluster(*arguments: str) -> subprocess.CompletedProcess[str]:
    """Run `python -m cluster` with `arguments` and return the finished process."""
    environment = {**os.environ, "PYTHONUNBUFFERED": "1"}
    environment.pop("TRACE_MESSAGES", None)
    return subprocess.run(
        [sys.executable, "-m", "cluster", *arguments],
        capture_output=True, text=True, timeout=RUN_SECONDS, check=False, env=environment,
    )


def _run_and_draw(data: Path, *extra: str) -> ET.Element:
    """Run a small cluster into `data`, draw its diagram and return the parsed SVG root."""
    run = _cluster("run", "--sync", "3", "--store", "2", "--clients", "1", "--messages", "5",
                   "--data-dir", str(data), *extra)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    output = data.parent / f"{data.name}.svg"
    drawn = _cluster("diagram", str(data), "-o", str(output))
    assert drawn.returncode == 0, drawn.stderr[-2000:]
    return ET.parse(output).getroot()


def _arrows(root: ET.Element) -> list[ET.Element]:
    return [element for element in root.iter(f"{SVG}g") if "message" in element.get("class", "").split()]


def _label(arrow: ET.Element) -> str:
    text = arrow.find(f"{SVG}text")
    assert text is not None
    return str(text.text)


def _write_log(path: Path, node: int, records: list[tuple[float, str, dict[str, object]]]) -> None:
    lines = [json.dumps({"time": BASE_TIME + time, "node": node, "event": event, **fields})
             for time, event, fields in records]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def test_traced_run_draws_real_arrows(tmp_path: Path) -> None:
    root = _run_and_draw(tmp_path / "traced", "--trace-messages")

    arrows = _arrows(root)
    real = [arrow for arrow in arrows if "inferred" not in arrow.get("class", "").split()]
    labels = {_label(arrow) for arrow in real}
    for expected in ("RequestVote", "Heartbeat", "Write", "Replicate"):
        assert expected in labels, sorted(labels)
    for arrow in real:
        assert arrow.get("data-type") == _label(arrow)
        assert arrow.get("data-from", "").split()[0] in ("sync", "store")
        assert arrow.get("data-to", "").split()[0] in ("sync", "store")
    delivered = [arrow for arrow in real if arrow.get("data-fate") == "delivered"]
    assert len(delivered) >= 10
    inferred_types = {arrow.get("data-type") for arrow in arrows if arrow not in real}
    assert inferred_types <= {"ClientReply"}


def test_traced_run_pairs_every_send(tmp_path: Path) -> None:
    data = tmp_path / "traced"
    run = _cluster("run", "--sync", "3", "--store", "2", "--clients", "1", "--messages", "5",
                   "--data-dir", str(data), "--trace-messages")
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]

    sends = []
    receives = []
    for path in sorted(data.glob("events_*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            record = json.loads(line)
            if record["event"] == "send":
                sends.append(record)
            elif record["event"] == "recv":
                receives.append(record)
    assert sends
    assert receives
    for record in receives:
        assert isinstance(record["conn"], str)
        assert record["link"] >= 1
    links_per_connection: dict[str, list[int]] = {}
    for record in sends:
        if not record.get("dropped"):
            links_per_connection.setdefault(record["conn"], []).append(record["link"])
    for conn, links in links_per_connection.items():
        assert links == list(range(1, len(links) + 1)), conn


def test_untraced_run_draws_inferred_arrows(tmp_path: Path) -> None:
    root = _run_and_draw(tmp_path / "plain")

    arrows = _arrows(root)
    assert arrows
    for arrow in arrows:
        assert "inferred" in arrow.get("class", "").split(), _label(arrow)
    assert list((tmp_path / "plain").glob("events_*.jsonl"))
    for path in (tmp_path / "plain").glob("events_*.jsonl"):
        assert '"event": "send"' not in path.read_text(encoding="utf-8")


def test_pairing_by_connection_and_link(tmp_path: Path) -> None:
    data = tmp_path / "run"
    data.mkdir()
    _write_log(data / "events_sync_1.jsonl", 1, [
        (0.00, "started", {"port": 1, "cluster_port": 2}),
        (0.10, "send", {"to": "sync 2", "type": "RequestVote", "conn": "aaaa", "link": 1}),
        (0.11, "send", {"to": "sync 2", "type": "Heartbeat", "conn": "aaaa", "link": 2}),
        # The link reconnected: a new connection starts again at link 1.
        (0.50, "send", {"to": "sync 2", "type": "Heartbeat", "conn": "bbbb", "link": 1}),
        (0.60, "send", {"to": "store 1", "type": "Write", "dropped": True}),
        (0.70, "send", {"to": "sync 2", "type": "Heartbeat", "conn": "bbbb", "link": 2}),
    ])
    _write_log(data / "events_sync_2.jsonl", 2, [
        (0.00, "started", {"port": 3, "cluster_port": 4}),
        (0.12, "recv", {"from": "sync 1", "type": "RequestVote", "conn": "aaaa", "link": 1}),
        (0.13, "recv", {"from": "sync 1", "type": "Heartbeat", "conn": "aaaa", "link": 2}),
        (0.52, "recv", {"from": "sync 1", "type": "Heartbeat", "conn": "bbbb", "link": 1}),
        (0.80, "recv", {"from": "store 1", "type": "WriteAck", "conn": "cccc", "link": 1}),
    ])
    _write_log(data / "events_store_1.jsonl", 1, [
        (0.00, "started", {"port": 5, "cluster_port": 6}),
    ])

    diagram = load_run_directory(data)

    sync1, sync2, store1 = Lane("sync", 1), Lane("sync", 2), Lane("store", 1)
    arrows = [(m.source, m.target, round(m.send, 2), None if m.receive is None else round(m.receive, 2),
               m.type, m.fate, m.inferred) for m in diagram.messages]
    assert (sync1, sync2, 0.10, 0.12, "RequestVote", "delivered", False) in arrows
    assert (sync1, sync2, 0.11, 0.13, "Heartbeat", "delivered", False) in arrows
    assert (sync1, sync2, 0.50, 0.52, "Heartbeat", "delivered", False) in arrows
    assert (sync1, store1, 0.60, None, "Write", "dropped", False) in arrows
    assert (sync1, sync2, 0.70, None, "Heartbeat", "lost", False) in arrows
    assert len(arrows) == 5
    assert not [mark for mark in diagram.marks if mark.label in ("send", "recv")]
    assert any("1 received messages have no send record" in note for note in diagram.notes)
