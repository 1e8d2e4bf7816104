"""Refusals of the plugin's pages (400, 404, …) as back-office pages, in the page's language.

Werkzeug's own error page is an English page of its own ("Not Found"),
without the back-office around it: after a click on a PDF link that no
longer exists, staff lost the menu and read English on a German
back-office.  Each billing view's blueprint shows its HTTP errors on the
host's admin layout instead, titled and, where the view gave no
description, explained in the page's language.

A host that registered a handler for the status code (``@app.errorhandler(404)``)
keeps it: Flask looks for code handlers before class handlers, and this one
is registered for the class :class:`~werkzeug.exceptions.HTTPException`.
"""

from __future__ import annotations

from typing import Any

from flask import Response
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.exceptions import HTTPException

from ..i18n import _l

#: The title and the default explanation of the errors the plugin's views raise.
TITLES = {
    400: _l("Bad request"),
    404: _l("Not found"),
    405: _l("Not possible here"),
    409: _l("Conflict"),
    413: _l("Too large"),
}
EXPLANATIONS = {
    400: _l("The request could not be read. Go back, reload the page and try again."),
    404: _l("This page or file does not exist, or no longer exists."),
    405: _l("This address does not accept that kind of request."),
    409: _l("The request conflicts with the current state. Reload the page and try again."),
    413: _l("The upload is larger than this back-office accepts."),
}


def error_page(view: Any, error: HTTPException) -> Any:
    """``error`` as the back-office page ``billing/admin/error.html``, or as it came.

    An error that carries its own response (the 403 page) or is no client or
    server error passes unchanged, as does any error while the page is built
    (the database unavailable): Werkzeug's page is better than none.
    """
    if error.response is not None or error.code is None or error.code < 400:
        return error.get_response()
    description = error.description
    if description == type(error).description:
        description = EXPLANATIONS.get(error.code, description)
    try:
        page = view.render(
            "billing/admin/error.html",
            error_title=TITLES.get(error.code, error.name),
            error_description=description,
            error_code=error.code,
        )
    except SQLAlchemyError:
        return error.get_response()
    headers = [(name, value) for name, value in error.get_headers() if name != "Content-Type"]
    return Response(page, error.code, headers, content_type="text/html; charset=utf-8")
