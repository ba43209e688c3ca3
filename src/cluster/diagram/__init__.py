"""Space-time diagrams of a cluster run or a simulator trace, as SVG or HTML.

The modules follow the pipeline: `run_logs` and `sim_trace` load a
`model.Diagram`, `select` narrows it, `layout` places it, `svg` draws it and
`page` wraps it in HTML with a legend. `command` is the `cluster diagram`
subcommand.
"""

from cluster.diagram.command import add_diagram_parser, run_diagram

__all__ = ["add_diagram_parser", "run_diagram"]
