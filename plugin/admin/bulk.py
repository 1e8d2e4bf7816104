"""Bulk actions that apply to every row matching the list's current filters.

Flask-Admin's actions only receive the ticked rows of the visible page; these
endpoints take the list's own query string, rebuild its filtered query with
Flask-Admin's ``get_list(..., execute=False)``, show how many rows it matches
in a confirmation page, and hand the ids to the same domain service as the
row action.
"""

from __future__ import annotations

from typing import Any

from flask import request


def matching_ids(view: Any) -> list[int]:
    """Primary keys of every row the list view's current search and filters match."""
    args = view._get_list_extra_args()
    sort = view._get_column_by_idx(args.sort)
    _, query = view.get_list(
        None,
        sort[0] if sort else None,
        args.sort_desc,
        args.search,
        args.filters,
        execute=False,
        page_size=0,
    )
    return [row[0] for row in query.with_entities(view.model.id).order_by(None)]


def list_query_string(leave_out: set[str] | frozenset[str] = frozenset()) -> dict[str, Any]:
    """The list's search, filter and sort arguments, to carry through the confirmation.

    Typed ``Any`` because the result goes to ``url_for(**values)``: mypy would
    match ``str`` values against its ``_external: bool`` keyword.
    """
    return {
        key: value
        for key, value in request.args.items()
        if key != "page" and key not in leave_out
    }
