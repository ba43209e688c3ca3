"""Answer status requests for nodes inside a namespace, one JSON line per request line.

    python -m cluster.faultnet.probe SYNC_NODES STORE_NODES

It runs inside a host namespace of `FaultNet`, because the caller's
namespace has no route to the nodes. For each line read from stdin it asks
every node for its status and prints a JSON list with one object per node:
`role`, `node` and `reply` (the StatusReply fields, or null when the node
did not answer). It exits at the end of stdin.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import sys

from cluster.node.settings import parse_node_list
from cluster.status import query_all


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    sync_nodes = parse_node_list(args[0], "SYNC_NODES")
    store_nodes = parse_node_list(args[1], "STORE_NODES")
    nodes = [("sync", index, address.host, address.port) for index, address in enumerate(sync_nodes, 1)]
    nodes += [("store", index, address.host, address.port) for index, address in enumerate(store_nodes, 1)]
    for _line in sys.stdin:
        statuses = asyncio.run(query_all(nodes))
        records = [
            {"role": status.role, "node": status.node,
             "reply": dataclasses.asdict(status.reply) if status.reply is not None else None}
            for status in statuses
        ]
        sys.stdout.write(json.dumps(records) + "\n")
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
