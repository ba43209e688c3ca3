"""Entry points that run one node in the current process."""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Callable
from pathlib import Path

from cluster.node.client_process import run_client
from cluster.node.settings import NodeSettings
from cluster.node.store_process import StoreRuntime
from cluster.node.sync_process import SyncRuntime

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


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
    """Run a sync, store or client node until it stops; return its exit status."""
    configure_logging(path=log_path)
    if settings.role == "sync":
        asyncio.run(SyncRuntime(settings).run())
        return 0
    if settings.role == "store":
        asyncio.run(StoreRuntime(settings).run())
        return 0
    return asyncio.run(run_client(settings, on_ack))
