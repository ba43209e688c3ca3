"""`cluster diagram SOURCE -o FILE`: draw a run or a simulator trace as a space-time diagram."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from cluster.diagram.layout import layout
from cluster.diagram.model import Diagram
from cluster.diagram.page import render_html
from cluster.diagram.run_logs import SourceError, load_run_directory
from cluster.diagram.select import DEFAULT_MAX_ARROWS, Selection, SelectionError, select
from cluster.diagram.svg import render_svg
from cluster.i18n import _

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
                        help=_("first time to show: seconds since the first event for a run, a step for a trace"))
    parser.add_argument("--to", dest="end", type=float, metavar="T",
                        help=_("last time to show, in the same unit as --from"))
    parser.add_argument("--types", metavar="TYPES",
                        help=_("show only these message types, comma-separated (for example VoteReply,NewEpoch)"))
    parser.add_argument("--max-arrows", type=int, default=DEFAULT_MAX_ARROWS, metavar="N",
                        help=_("draw at most N arrows, the earliest ones (default: {default})").format(
                            default=DEFAULT_MAX_ARROWS))
    return parser


def run_diagram(args: argparse.Namespace) -> int:
    """Write the diagram that `args` describes; print what was written, or an error on stderr."""
    try:
        text, shown = build_diagram(args)
    except (SourceError, SelectionError) as error:
        print(_("cluster diagram: error: {error}").format(error=error), file=sys.stderr)
        return EXIT_USAGE
    except OSError as error:
        print(_("cluster diagram: error: {error}").format(error=error), file=sys.stderr)
        return EXIT_USAGE
    try:
        args.output.write_text(text, encoding="utf-8")
    except OSError as error:
        reason = error.strerror or str(error)
        print(_("cluster diagram: error: cannot write {path} ({reason}); pass -o with a file in an existing, "
                "writable directory").format(path=args.output, reason=reason), file=sys.stderr)
        return EXIT_USAGE
    message = _("wrote {path}: {lanes} lanes, {arrows} arrows, {marks} marks").format(
        path=args.output, lanes=len(shown.lanes), arrows=len(shown.messages), marks=len(shown.marks))
    if shown.omitted_messages:
        message += "; " + _("{count} arrows left out by --max-arrows").format(count=shown.omitted_messages)
    print(message)
    return EXIT_OK


def build_diagram(args: argparse.Namespace) -> tuple[str, Diagram]:
    """Return the SVG or HTML text for `args`, and the diagram it shows."""
    suffix = args.output.suffix.lower()
    if suffix not in FORMATS:
        raise SourceError(_("--output {path} must end in .svg or .html").format(path=args.output))
    if args.max_arrows < 1:
        raise SelectionError(_("--max-arrows must be 1 or more, got {count}").format(count=args.max_arrows))
    types = None
    if args.types is not None:
        types = frozenset(name.strip() for name in args.types.split(",") if name.strip())

    diagram = load_source(args.source)
    shown = select(diagram, Selection(args.start, args.end, types, args.max_arrows))
    notes = list(shown.notes)
    if shown.omitted_messages:
        notes.append(_("{count} arrows left out (the cap is {cap}); narrow the diagram with --from, --to "
                       "or --types, or raise --max-arrows.").format(count=shown.omitted_messages,
                                                                    cap=args.max_arrows))
    svg = render_svg(shown, layout(shown, len(notes)), notes)
    if suffix == ".svg":
        return svg, shown
    return render_html(shown, svg, notes), shown


def load_source(path: Path) -> Diagram:
    """Load a data directory or a simulator trace; raise SourceError when `path` is neither."""
    if path.is_dir():
        try:
            return load_run_directory(path)
        except (OSError, UnicodeDecodeError) as error:
            raise SourceError(_("cannot read {path}: {error}").format(path=path, error=error)) from None
    if path.is_file():
        from cluster.diagram.sim_trace import load_trace

        return load_trace(path)
    raise SourceError(_("{path} not found; pass a data directory of a cluster run or a simulator trace file")
                      .format(path=path))
