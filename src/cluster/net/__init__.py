"""Asyncio transport: framed TCP connections between nodes and from clients."""
