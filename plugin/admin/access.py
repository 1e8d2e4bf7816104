"""Who may do what in the back-office: roles, declared as data.

The host tells the plugin the current user's roles through one callable
(``BILLING_CURRENT_ROLES``); the access table (:data:`plugin.manifest.PERMISSIONS`,
overridden by the host's ``BILLING_ACCESS``) says which roles hold each
permission, and the module's declaration which permission each view and
action needs and whether the host switched it off (``BILLING_ACTIONS``).
Every view, action and download checks on the server; hiding a button is
only a courtesy.
"""

from __future__ import annotations

from collections.abc import Mapping

from flask import current_app

from ..manifest import PERMISSIONS, READ

__all__ = ["DEFAULT_ACCESS", "READ", "access_table", "action_allowed", "allowed"]

#: permission -> roles that hold it, before the host's overrides.
DEFAULT_ACCESS: Mapping[str, frozenset[str]] = PERMISSIONS


def access_table() -> Mapping[str, frozenset[str]]:
    table: Mapping[str, frozenset[str]] = current_app.extensions["billing"].module().access
    return table


def current_roles() -> frozenset[str]:
    return frozenset(current_app.config["BILLING_CURRENT_ROLES"]() or ())


def allowed(permission: str) -> bool:
    """Whether the current user holds ``permission`` (unknown permissions: nobody)."""
    return bool(access_table().get(permission, frozenset()) & current_roles())


def action_allowed(view_key: str, action: str) -> bool:
    """Whether the action is switched on here and the current user may run it."""
    module = current_app.extensions["billing"].module()
    view = module.view(view_key)
    return (
        view is not None
        and module.action_enabled(view_key, action)
        and allowed(view.action(action).permission)
    )
