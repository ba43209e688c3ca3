"""Render a laid-out diagram as a standalone SVG document (no scripts, fonts or external files).

The elements carry classes and data attributes that name what they show,
so tests and readers can query the file: `g.lane[data-node]`,
`g.message[data-type][data-from][data-to][data-fate]` and
`g.mark[data-kind][data-node]`.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
import zlib

from cluster.diagram.layout import COLUMN_WIDTH, LEFT_MARGIN, NOTE_LINE_HEIGHT, Layout
from cluster.diagram.model import Diagram, Mark, Message, Span
from cluster.i18n import _

SVG_NS = "http://www.w3.org/2000/svg"

# Colors for message types, picked by a CRC of the type name so that a type
# keeps its color whatever else the diagram holds.
PALETTE = (
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b",
    "#e377c2", "#7f7f7f", "#bcbd22", "#17becf", "#393b79", "#637939",
)

MARK_COLORS = {
    "election": "#e6550d",
    "leader": "#d4a106",
    "term": "#636363",
    "vote": "#3182bd",
    "epoch": "#756bb1",
    "commit": "#31a354",
    "crash": "#cb181d",
    "restart": "#31a354",
    "stop": "#252525",
    "violation": "#cb181d",
    "other": "#969696",
}

STYLE = """
text { font-family: DejaVu Sans, Arial, sans-serif; fill: #222; }
.lane-line { stroke: #bbb; stroke-width: 1.5; }
.lane-name { font-size: 13px; font-weight: bold; }
.axis-label { font-size: 10px; fill: #555; }
.axis-tick { stroke: #e3e3e3; stroke-width: 1; }
.message line { stroke-width: 1.3; }
.message.inferred line { stroke-dasharray: 5 3; }
.message.lost line { stroke-dasharray: 2 3; }
.message-label { font-size: 9px; paint-order: stroke; stroke: #fff; stroke-width: 3px; }
.mark-label { font-size: 10px; paint-order: stroke; stroke: #fff; stroke-width: 3px; }
.span-pause { fill: #fdd0a2; fill-opacity: 0.55; }
.span-partition { fill: #c6dbef; fill-opacity: 0.55; }
.span-label { font-size: 10px; fill: #444; }
.note { font-size: 12px; fill: #444; }
"""


def type_color(message_type: str) -> str:
    return PALETTE[zlib.crc32(message_type.encode("utf-8")) % len(PALETTE)]


def render_svg(diagram: Diagram, page: Layout, notes: list[str]) -> str:
    """Return the SVG document for `diagram` placed by `page`."""
    root = ET.Element("svg", {
        "xmlns": SVG_NS, "width": _num(page.width), "height": _num(page.height),
        "viewBox": f"0 0 {_num(page.width)} {_num(page.height)}",
    })
    ET.SubElement(root, "title").text = _("Space-time diagram of {source}").format(source=diagram.source)
    ET.SubElement(root, "style").text = STYLE
    ET.SubElement(root, "rect", {"width": "100%", "height": "100%", "fill": "#ffffff"})
    _add_markers(root, diagram)
    _add_axis(root, diagram, page)
    _add_spans(root, diagram, page)
    _add_lanes(root, diagram, page)
    _add_messages(root, diagram, page)
    _add_marks(root, diagram, page)
    _add_notes(root, page, notes)
    ET.indent(root, space=" ")
    return ET.tostring(root, encoding="unicode", xml_declaration=False) + "\n"


def format_time(time: float, unit: str) -> str:
    return f"{time:.0f}" if unit == "step" else f"{time:.3f} s"


# --- Parts ------------------------------------------------------------------------------


def _add_markers(root: ET.Element, diagram: Diagram) -> None:
    defs = ET.SubElement(root, "defs")
    for message_type in diagram.message_types():
        marker = ET.SubElement(defs, "marker", {
            "id": _marker_id(message_type), "viewBox": "0 0 10 10", "refX": "9", "refY": "5",
            "markerWidth": "7", "markerHeight": "7", "orient": "auto-start-reverse",
        })
        ET.SubElement(marker, "path", {"d": "M 0 0 L 10 5 L 0 10 z", "fill": type_color(message_type)})


def _add_axis(root: ET.Element, diagram: Diagram, page: Layout) -> None:
    axis = ET.SubElement(root, "g", {"class": "axis"})
    label = _("time (step)") if diagram.time_unit == "step" else _("time (s since the first event)")
    ET.SubElement(axis, "text", {"class": "axis-label", "x": "8", "y": "16"}).text = label
    bottom = page.notes_y - 20
    previous = ""
    for x, time in page.axis_labels:
        text = format_time(time, diagram.time_unit)
        if text == previous:
            continue  # times closer than the label's precision
        previous = text
        ET.SubElement(axis, "line", {"class": "axis-tick", "x1": _num(x), "y1": "30",
                                     "x2": _num(x), "y2": _num(bottom)})
        ET.SubElement(axis, "text", {"class": "axis-label", "x": _num(x), "y": "26",
                                     "text-anchor": "middle"}).text = text


def _add_spans(root: ET.Element, diagram: Diagram, page: Layout) -> None:
    group = ET.SubElement(root, "g", {"class": "spans"})
    for span in diagram.spans:
        _add_span(group, span, page)


def _add_span(group: ET.Element, span: Span, page: Layout) -> None:
    x1 = page.x(span.start)
    x2 = max(page.x(span.end), x1 + COLUMN_WIDTH / 2)
    element = ET.SubElement(group, "g", {"class": f"span span-{span.kind}-group", "data-kind": span.kind})
    ET.SubElement(element, "title").text = span.label
    for lane in span.lanes:
        y = page.lane_y[lane]
        ET.SubElement(element, "rect", {"class": f"span-{span.kind}", "x": _num(x1), "y": _num(y - 14),
                                        "width": _num(x2 - x1), "height": "28", "data-node": lane.name})
    first = page.lane_y[span.lanes[0]]
    text = _("paused") if span.kind == "pause" else _("partition")
    ET.SubElement(element, "text", {"class": "span-label", "x": _num(x1 + 3), "y": _num(first + 24)}).text = text


def _add_lanes(root: ET.Element, diagram: Diagram, page: Layout) -> None:
    group = ET.SubElement(root, "g", {"class": "lanes"})
    right = page.width - 20
    for lane in diagram.lanes:
        y = page.lane_y[lane]
        element = ET.SubElement(group, "g", {"class": f"lane lane-{lane.role}", "data-node": lane.name})
        ET.SubElement(element, "line", {"class": "lane-line", "x1": _num(LEFT_MARGIN - 8), "y1": _num(y),
                                        "x2": _num(right), "y2": _num(y)})
        ET.SubElement(element, "text", {"class": "lane-name", "x": "10", "y": _num(y + 4)}).text = lane.name


def _add_messages(root: ET.Element, diagram: Diagram, page: Layout) -> None:
    group = ET.SubElement(root, "g", {"class": "messages"})
    for message in diagram.messages:
        _add_message(group, message, page, diagram.time_unit)


def _add_message(group: ET.Element, message: Message, page: Layout, unit: str) -> None:
    x1 = page.x(message.send)
    y1 = page.lane_y[message.source]
    x2 = page.x(message.end)
    y2 = page.lane_y[message.target]
    if message.receive is None:
        # An arrow that never arrived stops 60% of the way to its target lane.
        y2 = y1 + (y2 - y1) * 0.6
        x2 = max(x2, x1 + COLUMN_WIDTH)

    classes = ["message"]
    if message.inferred:
        classes.append("inferred")
    if message.fate != "delivered":
        classes.append("lost")
    color = type_color(message.type)
    element = ET.SubElement(group, "g", {
        "class": " ".join(classes), "data-type": message.type, "data-from": message.source.name,
        "data-to": message.target.name, "data-fate": message.fate,
    })
    when = format_time(message.send, unit)
    if message.receive is not None:
        when += " → " + format_time(message.receive, unit)
    title = f"{message.detail or message.label}\n{message.source.name} → {message.target.name}, {when}"
    if message.fate != "delivered":
        title += f" ({_fate_text(message.fate)})"
    ET.SubElement(element, "title").text = title

    attributes = {"x1": _num(x1), "y1": _num(y1), "x2": _num(x2), "y2": _num(y2), "stroke": color}
    if message.fate == "delivered":
        attributes["marker-end"] = f"url(#{_marker_id(message.type)})"
    ET.SubElement(element, "line", attributes)
    if message.fate != "delivered":
        _add_cross(element, x2, y2, color)

    label_x = x1 + (x2 - x1) * 0.5
    label_y = y1 + (y2 - y1) * 0.5
    ET.SubElement(element, "text", {"class": "message-label", "x": _num(label_x + 3), "y": _num(label_y - 2),
                                    "fill": color}).text = message.label


def _add_marks(root: ET.Element, diagram: Diagram, page: Layout) -> None:
    group = ET.SubElement(root, "g", {"class": "marks"})
    slots: dict[tuple[float, str], int] = {}
    for mark in diagram.marks:
        key = (mark.time, mark.lane.name)
        slot = slots.get(key, 0)
        slots[key] = slot + 1
        _add_mark(group, mark, page.slot_x[(mark.time, mark.lane, slot)], page.lane_y[mark.lane],
                  diagram.time_unit)


def _add_mark(group: ET.Element, mark: Mark, x: float, y: float, unit: str) -> None:
    element = ET.SubElement(group, "g", {"class": f"mark mark-{mark.kind}", "data-kind": mark.kind,
                                         "data-node": mark.lane.name})
    ET.SubElement(element, "title").text = f"{mark.lane.name}, {format_time(mark.time, unit)}: " + (
        mark.detail or mark.label)
    element.append(mark_symbol(mark.kind, x, y))
    label_x = x + 3
    label_y = y - 9
    ET.SubElement(element, "text", {
        "class": "mark-label", "x": _num(label_x), "y": _num(label_y), "fill": MARK_COLORS[mark.kind],
        "transform": f"rotate(-35 {_num(label_x)} {_num(label_y)})",
    }).text = mark.label


def mark_symbol(kind: str, x: float, y: float) -> ET.Element:
    """Return the symbol of a mark kind centred on (x, y); the HTML legend reuses it."""
    color = MARK_COLORS[kind]
    if kind == "crash":
        symbol = ET.Element("g", {"class": "symbol"})
        _add_cross(symbol, x, y, color, size=7.0, width="3")
        return symbol
    shapes = {
        "election": f"M {_num(x)} {_num(y - 7)} L {_num(x + 7)} {_num(y)} L {_num(x)} {_num(y + 7)} "
                    f"L {_num(x - 7)} {_num(y)} z",
        "leader": f"M {_num(x)} {_num(y - 8)} L {_num(x + 2.4)} {_num(y - 2.5)} L {_num(x + 8)} {_num(y - 2.5)} "
                  f"L {_num(x + 3.5)} {_num(y + 1.5)} L {_num(x + 5)} {_num(y + 7.5)} L {_num(x)} {_num(y + 4)} "
                  f"L {_num(x - 5)} {_num(y + 7.5)} L {_num(x - 3.5)} {_num(y + 1.5)} "
                  f"L {_num(x - 8)} {_num(y - 2.5)} L {_num(x - 2.4)} {_num(y - 2.5)} z",
        "vote": f"M {_num(x)} {_num(y - 6)} L {_num(x + 6)} {_num(y + 5)} L {_num(x - 6)} {_num(y + 5)} z",
        "restart": f"M {_num(x - 5)} {_num(y - 6)} L {_num(x + 6)} {_num(y)} L {_num(x - 5)} {_num(y + 6)} z",
        "stop": f"M {_num(x - 5)} {_num(y - 5)} h 10 v 10 h -10 z",
        "commit": f"M {_num(x - 2)} {_num(y - 8)} h 4 v 16 h -4 z",
    }
    if kind in shapes:
        return ET.Element("path", {"class": "symbol", "d": shapes[kind], "fill": color})
    radius = {"violation": 8.0, "epoch": 5.0, "term": 4.0}.get(kind, 3.0)
    fill = "#ffffff" if kind == "term" else color
    return ET.Element("circle", {"class": "symbol", "cx": _num(x), "cy": _num(y), "r": _num(radius),
                                 "fill": fill, "stroke": color, "stroke-width": "2"})


def _add_cross(parent: ET.Element, x: float, y: float, color: str, size: float = 4.0, width: str = "2") -> None:
    for dx in (size, -size):
        ET.SubElement(parent, "line", {"x1": _num(x - dx), "y1": _num(y - size), "x2": _num(x + dx),
                                       "y2": _num(y + size), "stroke": color, "stroke-width": width})


def _add_notes(root: ET.Element, page: Layout, notes: list[str]) -> None:
    group = ET.SubElement(root, "g", {"class": "notes"})
    for index, note in enumerate(notes):
        ET.SubElement(group, "text", {"class": "note", "x": "10",
                                      "y": _num(page.notes_y + (index + 1) * NOTE_LINE_HEIGHT)}).text = note


def _fate_text(fate: str) -> str:
    return {"dropped": _("dropped"), "lost": _("lost to a partition"), "in flight": _("still in flight")}.get(
        fate, fate)


def _marker_id(message_type: str) -> str:
    return "arrow-" + "".join(char if char.isalnum() else "-" for char in message_type)


def _num(value: float) -> str:
    text = f"{value:.1f}"
    return text[:-2] if text.endswith(".0") else text
