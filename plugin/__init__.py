"""Workspace billing: a Flask-Admin 2.x extension for workspaces, teams, members and their billing.

``from plugin import WorkspaceBilling`` is the whole public entry point; see
the README (and docs/host-integration.md) for how a host back-office mounts it.
"""

from .extension import WorkspaceBilling

__all__ = ["WorkspaceBilling"]
