"""Conversion of store configurations to and from the JSON of the state files."""

from typing import Any

from cluster.core.messages import StoreConfig


def config_to_dict(config: StoreConfig) -> dict[str, Any]:
    return {
        "epoch": config.epoch,
        "term": config.term,
        "primary": config.primary,
        "backups": list(config.backups),
        "joining": list(config.joining),
    }


def config_from_dict(data: dict[str, Any]) -> StoreConfig:
    return StoreConfig(
        epoch=int(data["epoch"]),
        term=int(data["term"]),
        primary=int(data["primary"]),
        backups=tuple(int(node) for node in data["backups"]),
        joining=tuple(int(node) for node in data.get("joining", ())),
    )
