"""Who may do what in the back-office: roles, declared as data.

The host tells the plugin the current user's roles through one callable
(``BILLING_CURRENT_ROLES``); the table below says which roles hold each
permission, and a host overrides any entry through ``BILLING_ACCESS``.
Every view, action and download checks its permission on the server; hiding
a button is only a courtesy.
"""

from __future__ import annotations

from collections.abc import Mapping

from flask import abort, current_app

READ = "read"

#: permission -> roles that hold it.
DEFAULT_ACCESS: Mapping[str, frozenset[str]] = {
    # Seeing the workspace, team, member, invoice and audit pages.
    READ: frozenset({"support", "admin", "accounting"}),
    "archive_teams": frozenset({"support", "admin"}),
    "purge_members": frozenset({"admin"}),
    "export_licences": frozenset({"admin", "accounting"}),
    "download_invoices": frozenset({"support", "admin", "accounting"}),
    "credit_notes": frozenset({"admin", "accounting"}),
    "view_rules": frozenset({"support", "accounting"}),
    "edit_rules": frozenset({"accounting"}),
    "change_mailbox": frozenset({"accounting"}),
    "resend_invoices": frozenset({"accounting"}),
    "edit_billing_details": frozenset({"accounting"}),
    "check_month": frozenset({"admin", "accounting"}),
}


def access_table() -> Mapping[str, frozenset[str]]:
    overrides = current_app.config.get("BILLING_ACCESS") or {}
    return {**DEFAULT_ACCESS, **{key: frozenset(roles) for key, roles in overrides.items()}}


def current_roles() -> frozenset[str]:
    return frozenset(current_app.config["BILLING_CURRENT_ROLES"]() or ())


def allowed(permission: str) -> bool:
    """Whether the current user holds ``permission`` (unknown permissions: nobody)."""
    return bool(access_table().get(permission, frozenset()) & current_roles())


def require(permission: str) -> None:
    """Stop the request with 403 unless the current user holds ``permission``."""
    if not allowed(permission):
        abort(403, description=f"Your role may not do this ({permission}).")
