"""Wrap the SVG in a standalone HTML page with a summary and a legend."""

from __future__ import annotations

import html
import xml.etree.ElementTree as ET

from cluster.diagram.model import MARK_KINDS, Diagram
from cluster.diagram.svg import format_time, mark_symbol, type_color
from cluster.i18n import _

PAGE_STYLE = """
body { font-family: DejaVu Sans, Arial, sans-serif; margin: 16px; color: #222; }
h1 { font-size: 18px; margin: 0 0 6px 0; }
p.summary { margin: 0 0 10px 0; font-size: 13px; }
.legend { display: flex; flex-wrap: wrap; gap: 4px 18px; font-size: 12px; margin-bottom: 10px; }
.legend span { display: inline-flex; align-items: center; gap: 4px; }
.diagram { overflow: auto; border: 1px solid #ddd; }
"""


def mark_descriptions() -> dict[str, str]:
    """Return the legend text of each mark kind."""
    return {
        "election": _("election: a node became a candidate"),
        "leader": _("a node became leader"),
        "term": _("term change: follower of a new leader, or stepped down"),
        "vote": _("vote granted"),
        "epoch": _("store epoch: proposed, installed or ready"),
        "commit": _("commit: sequence numbers appended to output.txt"),
        "crash": _("crash"),
        "restart": _("start or restart"),
        "stop": _("clean stop"),
        "violation": _("broken invariant"),
        "other": _("other event"),
    }


def render_html(diagram: Diagram, svg: str, notes: list[str]) -> str:
    """Return an HTML page that embeds `svg` with a legend of the marks and message types shown."""
    title = _("Space-time diagram of {source}").format(source=diagram.source)
    summary = _("{lanes} nodes, {arrows} arrows, {marks} marks; time in {unit}.").format(
        lanes=len(diagram.lanes), arrows=len(diagram.messages), marks=len(diagram.marks),
        unit=_("steps") if diagram.time_unit == "step" else _("seconds since the first event"))
    if diagram.messages or diagram.marks:
        times = [mark.time for mark in diagram.marks] + [message.send for message in diagram.messages]
        summary += " " + _("Shown from {start} to {end}.").format(
            start=format_time(min(times), diagram.time_unit), end=format_time(max(times), diagram.time_unit))
    # Translators: the language tag of the HTML page, for example pt-BR.
    language = _("en")
    parts = [
        "<!DOCTYPE html>",
        f'<html lang="{html.escape(language)}">',
        "<head>",
        '<meta charset="utf-8">',
        f"<title>{html.escape(title)}</title>",
        f"<style>{PAGE_STYLE}</style>",
        "</head>",
        "<body>",
        f"<h1>{html.escape(title)}</h1>",
        f'<p class="summary">{html.escape(summary)}</p>',
        _legend(diagram),
    ]
    parts += [f'<p class="summary note">{html.escape(note)}</p>' for note in notes]
    parts += ['<div class="diagram">', svg.rstrip("\n"), "</div>", "</body>", "</html>"]
    return "\n".join(parts) + "\n"


def _legend(diagram: Diagram) -> str:
    items = []
    shown = {mark.kind for mark in diagram.marks}
    descriptions = mark_descriptions()
    for kind in MARK_KINDS:
        if kind in shown:
            items.append(_swatch(ET.tostring(mark_symbol(kind, 10, 10), encoding="unicode"), descriptions[kind]))
    for message_type in diagram.message_types():
        color = type_color(message_type)
        line = (f'<line x1="1" y1="10" x2="19" y2="10" stroke="{color}" stroke-width="2"/>'
                f'<path d="M 13 6 L 19 10 L 13 14 z" fill="{color}"/>')
        items.append(_swatch(line, message_type))
    if any(message.inferred for message in diagram.messages):
        items.append(_swatch('<line x1="1" y1="10" x2="19" y2="10" stroke="#555" stroke-width="2" '
                             'stroke-dasharray="5 3"/>', _("dashed: inferred from the event logs")))
    if any(message.fate != "delivered" for message in diagram.messages):
        items.append(_swatch('<line x1="1" y1="10" x2="15" y2="10" stroke="#555" stroke-width="2" '
                             'stroke-dasharray="2 3"/><path d="M 12 6 L 19 14 M 19 6 L 12 14" stroke="#555" '
                             'stroke-width="2"/>', _("never arrived: dropped, lost or still in flight")))
    for kind, text in (("pause", _("paused node")), ("partition", _("node cut off by a partition"))):
        if any(span.kind == kind for span in diagram.spans):
            color = "#fdd0a2" if kind == "pause" else "#c6dbef"
            items.append(_swatch(f'<rect x="1" y="3" width="18" height="14" fill="{color}"/>', text))
    return '<div class="legend">' + "".join(items) + "</div>"


def _swatch(symbol: str, text: str) -> str:
    return (f'<span><svg xmlns="http://www.w3.org/2000/svg" width="20" height="20" viewBox="0 0 20 20">'
            f"{symbol}</svg>{html.escape(text)}</span>")
