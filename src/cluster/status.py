"""Ask nodes for their status over their client ports."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from cluster.core.messages import StatusReply, StatusRequest
from cluster.i18n import _
from cluster.net.transport import write_unless_closed
from cluster.wire import ProtocolError, encode, read_frame

STATUS_TIMEOUT_SECONDS = 1.0


@dataclass(frozen=True, slots=True)
class NodeStatus:
    role: str  # "sync" or "store", as configured
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
            return NodeStatus(role, node, host, port, None, str(error) or type(error).__name__)

    return list(await asyncio.gather(*(one(*node) for node in nodes)))


def format_table(statuses: list[NodeStatus]) -> str:
    """Render statuses as an aligned text table."""
    header = (_("node"), _("address"), _("role"), _("term"), _("leader"), _("epoch"), _("primary"), _("commit"),
              _("log"))
    rows = [header]
    for status in statuses:
        name = f"{status.role} {status.node}"
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
