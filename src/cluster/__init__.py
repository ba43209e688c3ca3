"""Cluster Sync and Cluster Store: a teaching package for distributed synchronization."""

__version__ = "0.1.0"
