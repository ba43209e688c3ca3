"""`cluster diagram SOURCE -o FILE`: draw a run or a simulator trace as a space-time diagram."""

from __future__ import annotations

import argparse
import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cluster.diagram.layout import layout
from cluster.diagram.model import Diagram
from cluster.diagram.page import render_html
from cluster.diagram.run_logs import SourceError, load_run_directory
from cluster.diagram.select import DEFAULT_MAX_ARROWS, Selection, SelectionError, select
from cluster.diagram.svg import render_svg
from cluster.error_text import describe_os_error, describe_unicode_error
from cluster.i18n import _, format_message

EXIT_OK = 0
EXIT_USAGE = 2
FORMATS = (".svg", ".html")


def add_diagram_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the `diagram` subcommand to the `cluster` command's subparsers."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "diagram",
        help=_("draw a space-time diagram of a run's data directory or a simulator trace"),
        description=_("Draw one lane per node, an arrow per message and marks for elections, term changes, "
                      "epochs, commits, crashes, pauses and partitions."),
    )
    parser.add_argument("source", type=Path, metavar="SOURCE",
                        help=_("data directory of a cluster run, or a simulator trace (JSON)"))
    parser.add_argument("-o", "--output", type=Path, required=True, metavar="FILE",
                        help=_("file to write: .svg for the diagram alone, .html for the diagram with a legend"))
    parser.add_argument("--from", dest="start", type=float, metavar="T",
                        help=_("first time to show, 0 or more: seconds since the first event for a run, a step "
                               "for a trace"))
    parser.add_argument("--to", dest="end", type=float, metavar="T",
                        help=_("last time to show, 0 or more, in the same unit as --from"))
    parser.add_argument("--types", metavar="TYPES",
                        help=_("show only these message types, comma-separated (for example VoteReply,NewEpoch)"))
    parser.add_argument("--max-arrows", type=int, default=DEFAULT_MAX_ARROWS, metavar="N",
                        help=_("draw at most N arrows, the earliest ones (default: {default})").format(
                            default=DEFAULT_MAX_ARROWS))
    return parser


@dataclass(frozen=True, slots=True)
class Drawing:
    """The SVG or HTML text of a diagram, the diagram it shows, and why it is empty when it is."""

    text: str
    shown: Diagram
    empty_note: str | None


def run_diagram(args: argparse.Namespace) -> int:
    """Write the diagram that `args` describes; print what was written, or an error on stderr.

    Warnings about the source, such as invalid log lines that were skipped, go to stderr.
    """
    try:
        drawing = build_diagram(args)
    except (SourceError, SelectionError) as error:
        print(_("cluster diagram: error: {error}").format(error=error), file=sys.stderr)
        return EXIT_USAGE
    except OSError as error:
        reason = describe_os_error(error)
        print(_("cluster diagram: error: {error}").format(error=f"{error.filename}: {reason}" if error.filename
                                                           else reason), file=sys.stderr)
        return EXIT_USAGE
    shown = drawing.shown
    for warning in shown.warnings:
        print(_("cluster diagram: warning: {warning}").format(warning=warning), file=sys.stderr)
    try:
        args.output.write_text(drawing.text, encoding="utf-8")
    except OSError as error:
        reason = describe_os_error(error)
        print(_("cluster diagram: error: cannot write {path} ({reason}); pass -o with a file in an existing, "
                "writable directory").format(path=args.output, reason=reason), file=sys.stderr)
        return EXIT_USAGE
    message = _("wrote {path}: {lanes} lanes, {arrows} arrows, {marks} marks").format(
        path=args.output, lanes=len(shown.lanes), arrows=len(shown.messages), marks=len(shown.marks))
    if shown.omitted_messages:
        message += "; " + _("{count} arrows left out by --max-arrows").format(count=shown.omitted_messages)
    print(message)
    if drawing.empty_note is not None:
        print(drawing.empty_note)
    return EXIT_OK


def build_diagram(args: argparse.Namespace) -> Drawing:
    """Return the SVG or HTML text for `args`, the diagram it shows, and why it is empty when it is."""
    suffix = args.output.suffix.lower()
    if suffix not in FORMATS:
        raise SourceError(_("--output {path} must end in .svg or .html").format(path=args.output))
    if args.max_arrows < 1:
        raise SelectionError(_("--max-arrows must be 1 or more, got {count}").format(count=args.max_arrows))
    _check_time("--from", args.start)
    _check_time("--to", args.end)
    types = None
    if args.types is not None:
        types = frozenset(name.strip() for name in args.types.split(",") if name.strip())
        if not types:
            raise SelectionError(_("--types {value!r} names no message type; pass comma-separated types such as "
                                   "VoteReply,NewEpoch, or leave --types out to show every type").format(
                                       value=args.types))

    diagram = load_source(args.source)
    shown = select(diagram, Selection(args.start, args.end, types, args.max_arrows))
    notes = list(shown.notes)
    empty_note = _empty_selection_note(args, diagram, shown)
    if empty_note is not None:
        notes.append(empty_note)
    if shown.omitted_messages:
        notes.append(_("{count} arrows left out (the cap is {cap}); narrow the diagram with --from, --to "
                       "or --types, or raise --max-arrows.").format(count=shown.omitted_messages,
                                                                    cap=args.max_arrows))
    svg = render_svg(shown, layout(shown, len(notes)), notes)
    if suffix == ".svg":
        return Drawing(svg, shown, empty_note)
    return Drawing(render_html(shown, svg, notes), shown, empty_note)


def _check_time(option: str, value: float | None) -> None:
    # argparse's float() accepts nan, inf and negative numbers, and none of them is a time in the diagram.
    if value is not None and not (math.isfinite(value) and value >= 0):
        raise SelectionError(_("invalid {option} {value:g}: expected a time of 0 or more (seconds since the first "
                               "event for a run, a step for a trace)").format(option=option, value=value))


def _empty_selection_note(args: argparse.Namespace, diagram: Diagram, shown: Diagram) -> str | None:
    """Return a note naming the filters and the source's time range when the filters leave nothing to draw."""
    if shown.messages or shown.marks or shown.spans:
        return None
    filters = []
    if args.start is not None:
        filters.append(f"--from {args.start:g}")
    if args.end is not None:
        filters.append(f"--to {args.end:g}")
    if args.types is not None:
        filters.append(f"--types {args.types}")
    if not filters:
        return None
    selection = " ".join(filters)
    covered = diagram.time_range()
    if covered is None:
        return _("note: nothing matches {filters}: the source has no messages, marks or faults").format(
            filters=selection)
    first, last = covered
    if diagram.time_unit == "step":
        message = _("note: nothing matches {filters}: the trace covers steps {first:g} to {last:g}")
    else:
        message = _("note: nothing matches {filters}: the run covers {first:g} s to {last:g} s after its first "
                    "event")
    return format_message(message, filters=selection, first=first, last=last)


def load_source(path: Path) -> Diagram:
    """Load a data directory or a simulator trace; raise SourceError when `path` is neither."""
    if path.is_dir():
        try:
            return load_run_directory(path)
        except OSError as error:
            raise SourceError(_("cannot read {path}: {error}").format(path=error.filename or path,
                                                                     error=describe_os_error(error))) from None
        except UnicodeDecodeError as error:
            raise SourceError(_("cannot read {path}: {error}").format(path=path,
                                                                     error=describe_unicode_error(error))) from None
    if path.is_file():
        from cluster.diagram.sim_trace import load_trace

        return load_trace(path)
    raise SourceError(_("{path} not found; pass a data directory of a cluster run or a simulator trace file")
                      .format(path=path))
