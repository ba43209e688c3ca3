"""Ask nodes for their status over their client ports."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from cluster.core.messages import StatusReply, StatusRequest
from cluster.error_text import describe_os_error
from cluster.i18n import _, format_message
from cluster.net.transport import write_unless_closed
from cluster.wire import ProtocolError, encode, read_frame

STATUS_TIMEOUT_SECONDS = 1.0
# The `role` of a node queried by address alone, whose kind (sync or store) is not known.
SINGLE_NODE = "node"


@dataclass(frozen=True, slots=True)
class NodeStatus:
    role: str  # "sync" or "store", as configured, or SINGLE_NODE
    node: int
    host: str
    port: int
    reply: StatusReply | None  # None when the node did not answer
    error: str = ""


async def query_status(host: str, port: int, timeout: float = STATUS_TIMEOUT_SECONDS) -> StatusReply:
    """Return the node's StatusReply; raise OSError, TimeoutError or ProtocolError."""

    async def ask() -> StatusReply:
        reader, writer = await asyncio.open_connection(host, port)
        try:
            if not write_unless_closed(writer, encode(StatusRequest())):
                raise ConnectionResetError(f"{host}:{port} closed the connection")
            await writer.drain()
            reply = await read_frame(reader)
        finally:
            writer.close()
        if not isinstance(reply, StatusReply):
            raise ProtocolError(f"expected StatusReply from {host}:{port}, got {type(reply).__name__}")
        return reply

    return await asyncio.wait_for(ask(), timeout)


async def query_all(
    nodes: list[tuple[str, int, str, int]], timeout: float = STATUS_TIMEOUT_SECONDS
) -> list[NodeStatus]:
    """Query (role, node, host, port) for every node at once, waiting at most `timeout` seconds for each."""

    async def one(role: str, node: int, host: str, port: int) -> NodeStatus:
        try:
            return NodeStatus(role, node, host, port, await query_status(host, port, timeout))
        except (OSError, TimeoutError, ProtocolError, EOFError) as error:
            return NodeStatus(role, node, host, port, None, describe_query_error(error, timeout))

    return list(await asyncio.gather(*(one(*node) for node in nodes)))


def describe_query_error(error: Exception, timeout: float = STATUS_TIMEOUT_SECONDS) -> str:
    """Return why a status query failed, in the language of the messages."""
    # TimeoutError is an OSError without an errno, so it is checked first.
    if isinstance(error, TimeoutError):
        return format_message(_("no reply within {seconds:.1f} s"), seconds=timeout)
    if isinstance(error, EOFError):
        return _("the node closed the connection without a reply")
    if isinstance(error, OSError):
        return describe_os_error(error)
    return _("the reply is not a status reply of a cluster node")


def _row_name(status: NodeStatus) -> str:
    if status.role != SINGLE_NODE:
        return f"{status.role} {status.node}"
    # A node queried by address: its id is known only from its reply.
    label = _("node")
    if status.reply is None:
        return label
    return f"{label} {status.reply.node}"


def format_table(statuses: list[NodeStatus]) -> str:
    """Render statuses as an aligned text table."""
    header = (_("node"), _("address"), _("role"), _("term"), _("leader"), _("epoch"), _("primary"), _("commit"),
              _("log"))
    rows = [header]
    for status in statuses:
        name = _row_name(status)
        address = f"{status.host}:{status.port}"
        reply = status.reply
        if reply is None:
            # Like the roles the nodes report, "down" stays English, so scripts can match the column.
            rows.append((name, address, "down", "-", "-", "-", "-", "-", "-"))
            continue
        rows.append((
            name, address, reply.role, str(reply.term), str(reply.leader or "-"), str(reply.epoch),
            str(reply.primary), str(reply.commit), str(reply.log_len),
        ))
    widths = [max(len(row[column]) for row in rows) for column in range(len(header))]
    return "\n".join("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
                     for row in rows)
