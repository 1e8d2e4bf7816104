"""Links from one admin page to another plugin list or page.

Each is ``None`` when the host switched the target off or the current user
may not see it, so a page shows a link only where it leads somewhere.
"""

from __future__ import annotations

from typing import Any

from flask import current_app, url_for

from ..extension import billing
from ..i18n import gettext
from .access import allowed


def filter_url(view_key: str, filter_name: str, value: str) -> str | None:
    """The list of ``view_key`` filtered with Flask-Admin's URL argument for the filter
    named ``filter_name`` (its English name); ``None`` when the host switched the list
    off or the user may not see it."""
    declared = billing().module().view(view_key)
    if declared is None or not allowed(declared.permission):
        return None
    endpoint = declared.endpoint
    for admin in current_app.extensions.get("admin", ()):
        for view in admin._views:
            if getattr(view, "endpoint", None) != endpoint or not view._filter_args:
                continue
            # The filters' names are lazy strings, shown in the user's language.
            shown = gettext(filter_name)
            for arg, (_, flt) in view._filter_args.items():
                if str(flt.name) == shown:
                    query: dict[str, Any] = {f"flt0_{arg}": value}
                    return url_for(f"{endpoint}.index_view", **query)
    return None


def page_url(view_key: str, endpoint: str, **values: Any) -> str | None:
    """A page of another view, or ``None`` when it is switched off or not for this user."""
    declared = billing().module().view(view_key)
    if declared is None or not allowed(declared.permission):
        return None
    return url_for(f"{declared.endpoint}.{endpoint}", **values)
