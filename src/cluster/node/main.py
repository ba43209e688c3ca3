"""Entry points that run one node in the current process."""

from __future__ import annotations

import cProfile
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path

from cluster.event_loop import run_event_loop
from cluster.i18n import untranslated
from cluster.node.client_process import run_client
from cluster.node.settings import NodeSettings
from cluster.node.store_process import StoreRuntime
from cluster.node.sync_process import SyncRuntime

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# Exit status of a node stopped by an unexpected exception in one of its tasks.
EXIT_NODE_FAILED = 1


def configure_logging(level: int = logging.INFO, path: Path | None = None) -> None:
    """Send log records to stderr, or to `path` when given (one file per node in a local run)."""
    handler: logging.Handler
    if path is None:
        handler = logging.StreamHandler(sys.stderr)
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)


def run_node(settings: NodeSettings, log_path: Path | None = None,
             on_ack: Callable[[int], None] | None = None) -> int:
    """Run a sync, store or client node until it stops; return its exit status.

    With CLUSTER_PROFILE_DIR set, the node runs under cProfile and writes
    `<role>_<id>.prof` there when it stops (for the benchmarks).
    """
    configure_logging(path=log_path)
    profile_dir = os.environ.get("CLUSTER_PROFILE_DIR")
    if profile_dir:
        profiler = cProfile.Profile()
        try:
            return profiler.runcall(_run, settings, on_ack)
        finally:
            profiler.dump_stats(Path(profile_dir) / f"{settings.role}_{settings.node_id}.prof")
    return _run(settings, on_ack)


def _run(settings: NodeSettings, on_ack: Callable[[int], None] | None) -> int:
    if settings.role in ("sync", "store"):
        # The constructor reads the node's data files. A DataFileError it
        # raises reaches the CLI, which prints it in the locale's language.
        # Errors of the running node go to its log, which stays English.
        runtime = SyncRuntime(settings) if settings.role == "sync" else StoreRuntime(settings)
        with untranslated():
            run_event_loop(runtime.run())
        # A task that raised stopped the node, and its log has the traceback.
        return EXIT_NODE_FAILED if runtime.failed_task is not None else 0
    return run_event_loop(run_client(settings, on_ack))
