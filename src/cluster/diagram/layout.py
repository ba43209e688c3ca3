"""Place a diagram on a page: lanes as horizontal lines, time running to the right.

Time is laid out by order, not to scale: every distinct time that something
happens at gets its own column, so a burst of events within a millisecond
is as readable as a quiet second. A time at which one lane has several marks
gets one column per mark. The axis labels give the real times.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from cluster.diagram.model import Diagram, Lane

COLUMN_WIDTH = 26.0
LANE_HEIGHT = 72.0
LEFT_MARGIN = 110.0  # room for the lane names
RIGHT_MARGIN = 60.0
TOP_MARGIN = 90.0  # the time axis and the labels of the first lane's marks
BOTTOM_MARGIN = 30.0
NOTE_LINE_HEIGHT = 16.0
# One axis label every this many columns at most, so labels do not overlap.
AXIS_LABEL_EVERY = 6


@dataclass(frozen=True, slots=True)
class Layout:
    width: float
    height: float
    lane_y: dict[Lane, float]
    time_x: dict[float, float]  # x of the first column of each time
    slot_x: dict[tuple[float, Lane, int], float]  # x of the n-th mark of a lane at a time
    axis_labels: list[tuple[float, float]]  # (x, time)
    notes_y: float

    def x(self, time: float) -> float:
        return self.time_x[time]


def layout(diagram: Diagram, note_count: int) -> Layout:
    """Compute every position the renderer needs; the same diagram always gives the same layout."""
    lane_y = {lane: TOP_MARGIN + index * LANE_HEIGHT for index, lane in enumerate(diagram.lanes)}

    marks_at = Counter((mark.time, mark.lane) for mark in diagram.marks)
    width_at: dict[float, int] = {}
    for (time, _lane), count in marks_at.items():
        width_at[time] = max(width_at.get(time, 1), count)
    times: set[float] = set(width_at)
    for message in diagram.messages:
        times.update((message.send, message.end))
    for span in diagram.spans:
        times.update((span.start, span.end))

    time_x: dict[float, float] = {}
    x = LEFT_MARGIN + COLUMN_WIDTH / 2
    axis_labels: list[tuple[float, float]] = []
    last_label_column = -AXIS_LABEL_EVERY
    column = 0
    for time in sorted(times):
        time_x[time] = x
        if column - last_label_column >= AXIS_LABEL_EVERY:
            axis_labels.append((x, time))
            last_label_column = column
        columns = width_at.get(time, 1)
        x += columns * COLUMN_WIDTH
        column += columns

    slot_x: dict[tuple[float, Lane, int], float] = {}
    for time, lane in marks_at:
        for slot in range(marks_at[(time, lane)]):
            slot_x[(time, lane, slot)] = time_x[time] + slot * COLUMN_WIDTH

    lanes_bottom = TOP_MARGIN + max(len(diagram.lanes) - 1, 0) * LANE_HEIGHT
    notes_y = lanes_bottom + LANE_HEIGHT * 0.6
    height = notes_y + note_count * NOTE_LINE_HEIGHT + BOTTOM_MARGIN
    width = max(x + RIGHT_MARGIN, LEFT_MARGIN + 400.0)
    return Layout(width, height, lane_y, time_x, slot_x, axis_labels, notes_y)
