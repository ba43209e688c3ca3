"""Narrow a diagram for large runs: a time window, a message-type filter and an arrow cap."""

from __future__ import annotations

from dataclasses import dataclass

from cluster.diagram.model import Diagram, Span
from cluster.i18n import _

# Default cap on arrows; past a few hundred, labels overlap even on a wide page.
DEFAULT_MAX_ARROWS = 300


class SelectionError(ValueError):
    """An invalid filter: a negative or non-finite time, an empty window or type list, or an unknown type."""


@dataclass(frozen=True, slots=True)
class Selection:
    start: float | None = None  # --from, in the source's time unit
    end: float | None = None  # --to
    types: frozenset[str] | None = None  # None keeps every type
    max_arrows: int = DEFAULT_MAX_ARROWS


def select(diagram: Diagram, selection: Selection) -> Diagram:
    """Return a new diagram narrowed by `selection`, whose `omitted_messages` counts what the cap removed.

    A message is kept when its flight overlaps the window, a mark when its
    time is inside the window, and a span when it overlaps the window (clipped
    to it). The cap keeps the earliest arrows in the diagram's order.
    """
    start = selection.start
    end = selection.end
    if start is not None and end is not None and start > end:
        raise SelectionError(_("--from {start:g} is after --to {end:g}; swap them").format(start=start, end=end))
    if selection.types is not None:
        unknown = sorted(selection.types - set(diagram.message_types()))
        if unknown:
            known = ", ".join(diagram.message_types()) or "-"
            raise SelectionError(_("unknown message type {types}; types in this source: {known}").format(
                types=", ".join(unknown), known=known))

    def inside(time: float) -> bool:
        return (start is None or time >= start) and (end is None or time <= end)

    def overlaps(first: float, last: float) -> bool:
        return (start is None or last >= start) and (end is None or first <= end)

    messages = [
        message for message in diagram.messages
        if overlaps(message.send, message.end) and (selection.types is None or message.type in selection.types)
    ]
    omitted = max(0, len(messages) - selection.max_arrows)
    spans = [
        Span(span.kind, span.lanes, span.start if start is None else max(span.start, start),
             span.end if end is None else min(span.end, end), span.label)
        for span in diagram.spans if overlaps(span.start, span.end)
    ]
    return Diagram(
        source=diagram.source,
        time_unit=diagram.time_unit,
        lanes=list(diagram.lanes),
        messages=messages[: selection.max_arrows],
        marks=[mark for mark in diagram.marks if inside(mark.time)],
        spans=spans,
        notes=list(diagram.notes),
        omitted_messages=omitted,
        warnings=list(diagram.warnings),
    )
