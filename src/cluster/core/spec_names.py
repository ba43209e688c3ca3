"""Link the Python protocol code to the names of the TLA+ spec.

Each handler that implements a spec action carries the action's name through
the `action` decorator, and each invariant function carries the invariant's
name through `invariant`. Tests compare these registries with the names the
spec defines, in both directions, so the code and the spec cannot drift apart
silently. The decorators only record the name; they do not wrap the function.
"""

from collections.abc import Callable
from typing import TypeVar

F = TypeVar("F", bound=Callable[..., object])

_ACTIONS: dict[str, str] = {}
_INVARIANTS: dict[str, str] = {}


def action(spec_name: str) -> Callable[[F], F]:
    """Record that the decorated handler implements the spec action `spec_name`."""

    def record(function: F) -> F:
        _ACTIONS[spec_name] = function.__qualname__
        return function

    return record


def invariant(spec_name: str) -> Callable[[F], F]:
    """Record that the decorated function checks the spec invariant `spec_name`."""

    def record(function: F) -> F:
        _INVARIANTS[spec_name] = function.__qualname__
        return function

    return record


def registered_actions() -> dict[str, str]:
    """Return spec action name -> Python qualified name, after importing the core."""
    _import_protocol_modules()
    return dict(_ACTIONS)


def registered_invariants() -> dict[str, str]:
    """Return spec invariant name -> Python qualified name, after importing the core."""
    _import_protocol_modules()
    return dict(_INVARIANTS)


def _import_protocol_modules() -> None:
    import importlib

    for module in (
        "cluster.core.sync_node",
        "cluster.core.store_node",
        "cluster.core.client",
        "cluster.core.output",
        "cluster.sim.world",
        "cluster.invariants",
    ):
        importlib.import_module(module)
