"""Errors the runtime raises with a message meant for the person reading the task log."""

from __future__ import annotations


class RuntimeFailure(RuntimeError):
    """A pipeline step cannot complete; the message says why and what to check."""
