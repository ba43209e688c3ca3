"""The benchmark report: target verdicts, the tables in both languages and the floor of the sequential path."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


@pytest.fixture(scope="module")
def report() -> ModuleType:
    """Load benchmarks/report.py, which is a script beside the package rather than part of it."""
    spec = importlib.util.spec_from_file_location("bench_report", BENCHMARKS / "report.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _load(system: str, clients: int, window: int, rate: float, p50: float, p99: float) -> dict[str, Any]:
    return {"system": system, "clients": clients, "window": window, "messages_per_second": rate,
            "latency": {"count": 100, "p50_ms": p50, "p99_ms": p99}}


def _failover(target: str, median: float, maximum: float) -> dict[str, Any]:
    return {"target": target, "repetitions": 10, "kills_before_store_healthy": 0, "spurious_elections": 0,
            "verified": True, "failover_ms": {"count": 10, "min": 40.0, "median": median, "max": maximum}}


def _result(budget: dict[str, Any] | None = None) -> dict[str, Any]:
    result: dict[str, Any] = {
        "command": "python benchmarks/run.py", "started": "2026-01-01T00:00:00Z", "finished": "2026-01-01T00:06:00Z",
        "machine": {"cpu": "test CPU", "cores": 2, "memory_bytes": 2**33, "kernel": "6.0", "python": "3.11.7"},
        "quiet": {"threshold": 1.5, "reached": True, "waited_seconds": 0.0},
        "load_before": [0.5, 0.5, 0.5], "load_after": [1.0, 1.0, 1.0],
        "settings": {"failover_clients": 50, "failover_window": 32},
        "load": [_load("cluster", 1, 1, 601.0, 1.57, 2.79), _load("cluster", 50, 32, 28546.0, 55.2, 90.61),
                 _load("etcd", 1, 1, 942.0, 1.01, 1.75)],
        "failover": [_failover("leader", 59.3, 151.3), _failover("primary", 71.0, 108.0)],
        "peers": {"pysyncobj": {"skipped": "not installed"}},
    }
    if budget is not None:
        result["latency_budget"] = budget
    return result


def test_targets_judge_each_figure(report: ModuleType) -> None:
    verdicts = report.targets(_result())

    assert verdicts["throughput_50_clients"] == {"measured": "28546 messages/s", "met": True}
    assert verdicts["sequential_p50"] == {"measured": "1.57 ms", "met": False}
    assert verdicts["sequential_p99"] == {"measured": "2.79 ms", "met": False}
    assert verdicts["leader_failover"] == {"measured": "median 59 ms, max 151 ms, 0 spurious", "met": True}
    assert verdicts["primary_failover"] == {"measured": "median 71 ms", "met": True}


def test_portuguese_block_has_no_english_figures(report: ModuleType) -> None:
    block = report.generated_block(_result(), portuguese=True)

    assert "| pelo menos 20.000 mensagens confirmadas/s com 50 clientes | 28546 mensagens/s | sim |" in block
    assert "| latência sequencial p50 <= 0,8 ms | 1,57 ms | não |" in block
    assert "| mediana 59 ms, máximo 151 ms, 0 espúrias | sim |" in block
    assert "| este cluster | 1 | 1 | 601 | 1,57 | 2,79 |" in block
    assert "| etcd | 1 | 1 | 942 | 1,01 | 1,75 |" in block
    assert "| líder de sync | 10 | 10 | 0 | 40 | 59 | 151 | 0 | sim |" in block
    assert "Máquina: test CPU, 2 núcleos, 8,0 GiB, kernel 6.0, Python 3.11.7." in block
    assert "antes: 0,5; 0,5; 0,5, depois: 1,0; 1,0; 1,0; limiar de 1 minuto 1,5 atingido após 0,0 s" in block
    for english in ("messages/s", "median", "spurious", "this cluster", "True"):
        assert re.search(rf"\b{re.escape(english)}\b", block) is None, english


def test_english_block_keeps_english_figures(report: ModuleType) -> None:
    block = report.generated_block(_result(), portuguese=False)

    assert "| sequential latency p50 <= 0.8 ms | 1.57 ms | no |" in block
    assert "| this cluster | 1 | 1 | 601 | 1.57 | 2.79 | - | 0.64x | - | 1.55x |" in block
    assert "| sync leader | 10 | 10 | 0 | 40 | 59 | 151 | 0 | yes |" in block


def test_floor_printed_when_measured(report: ModuleType) -> None:
    budget = {"floor_ms": {"uvloop streams, two cores": 0.661, "blocking sockets, two cores": 0.57}}

    english = report.generated_block(_result(budget), portuguese=False)
    portuguese = report.generated_block(_result(budget), portuguese=True)

    assert "Estimated floor of the sequential path on this machine" in english
    assert "in the same run: 0.66 ms." in english
    assert "na mesma execução: 0,66 ms." in portuguese
    assert "slept 1 ms" not in english


def test_idle_floor_printed_when_measured(report: ModuleType) -> None:
    budget = {"floor_ms": {"uvloop streams, two cores": 0.661, "uvloop streams, two cores, after 1 ms idle": 0.912}}

    english = report.generated_block(_result(budget), portuguese=False)
    portuguese = report.generated_block(_result(budget), portuguese=True)

    assert "in the same run: 0.66 ms." in english
    assert "slept 1 ms first, as the nodes do between the steps of sequential writes, the floor was 0.91 ms." in english
    assert "dormiram 1 ms antes, como os nós entre as etapas de escritas sequenciais, o piso foi 0,91 ms." in portuguese


def test_report_floor_names_match_budget(report: ModuleType) -> None:
    sys.path.insert(0, str(BENCHMARKS))
    try:
        spec = importlib.util.spec_from_file_location("bench_latency_budget", BENCHMARKS / "latency_budget.py")
        assert spec is not None and spec.loader is not None
        budget = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(budget)
    finally:
        sys.path.remove(str(BENCHMARKS))

    assert f"{budget.NODE_TRANSPORT}, two cores" == report.BUSY_FLOOR
    assert report.IDLE_FLOOR == budget.IDLE_TRANSPORT


@pytest.mark.parametrize("budget", [None, {"skipped": "this process may run on 1 core only"}],
                         ids=["old result", "skipped"])
def test_floor_left_out_when_not_measured(report: ModuleType, budget: dict[str, Any] | None) -> None:
    block = report.generated_block(_result(budget), portuguese=False)

    assert "floor of the sequential path" not in block
    assert "### Throughput and latency" in block


def _sequential(cluster_p50: list[float], etcd_p50: list[float], pooled: tuple[float, float]) -> dict[str, Any]:
    runs = []
    for cluster, etcd in zip(cluster_p50, etcd_p50, strict=True):
        for system, p50 in (("cluster", cluster), ("etcd", etcd)):
            runs.append({"system": system, "messages_per_second": 700.0,
                         "latency": {"count": 3000, "p50_ms": p50, "p99_ms": 2.0}})
    return {"runs": runs, "pooled": {
        "cluster": {"count": 9000, "p50_ms": pooled[0], "p99_ms": 2.31},
        "etcd": {"count": 9000, "p50_ms": pooled[1], "p99_ms": 2.02},
    }}


def test_targets_judged_on_pooled_runs(report: ModuleType) -> None:
    result = _result()
    result["sequential"] = _sequential([0.79, 1.3, 1.4], [1.1, 1.2, 1.2], (1.31, 1.18))

    verdicts = report.targets(result)

    assert verdicts["sequential_p50"] == {"measured": "1.31 ms", "met": False}
    assert verdicts["sequential_p99"] == {"measured": "2.31 ms", "met": False}


def test_sequential_table_both_languages(report: ModuleType) -> None:
    result = _result()
    result["settings"]["sequential_runs"] = 3
    result["sequential"] = _sequential([1.25, 1.3, 1.4], [1.1, 1.2, 1.2], (1.31, 1.18))

    english = report.generated_block(result, portuguese=False).splitlines()
    portuguese = report.generated_block(result, portuguese=True).splitlines()

    assert "### Sequential latency, in turns" in english
    assert "| this cluster | 3 | 1.25, 1.30, 1.40 | 1.31 | 2.31 | 1.11x |" in english
    assert "| etcd | 3 | 1.10, 1.20, 1.20 | 1.18 | 2.02 |  |" in english
    assert "### Latência sequencial, em turnos" in portuguese
    assert "| este cluster | 3 | 1,25; 1,30; 1,40 | 1,31 | 2,31 | 1,11x |" in portuguese


def test_sequential_table_left_out_without_runs(report: ModuleType) -> None:
    block = report.generated_block(_result(), portuguese=False)

    assert "Sequential latency, in turns" not in block
    assert "### Failover (under a load of 50 clients, window 32)" in block
