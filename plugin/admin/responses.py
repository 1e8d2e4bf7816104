"""What several admin pages answer alike: a stored file, a refusal on a form.

The views import these instead of importing each other.  A refusal
(:class:`plugin.api.ManagementError`) is shown next to the field it names and
the page is shown again with what was typed; nothing is changed.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

from flask import Response, abort, send_file
from flask_wtf import FlaskForm
from wtforms.validators import Length

from .. import api
from ..extension import billing
from ..services.einvoices import XmlNotAvailable, stored_xml
from ..services.invoice_pdfs import PdfNotAvailable, stored_pdf

#: Generous limits on the forms' text fields: the services say what is wrong
#: with an over-long value.
TEXT = [Length(max=1000)]


def pdf_response(number: str) -> Response:
    """The stored PDF of an invoice, byte for byte as issued."""
    return _stored_file(number, stored_pdf, PdfNotAvailable, "pdf")


def xml_response(number: str) -> Response:
    """The stored e-invoice XML of an invoice (only a valid one), byte for byte."""
    return _stored_file(number, stored_xml, XmlNotAvailable, "xml")


def _stored_file(
    number: str, read: Callable[[Any, str], bytes], missing: type[LookupError], suffix: str
) -> Response:
    try:
        data = read(billing().session, number)
    except missing as exc:
        abort(404, description=str(exc))
    return send_file(
        io.BytesIO(data),
        mimetype=f"application/{suffix}",
        as_attachment=True,
        download_name=f"invoice-{number}.{suffix}",
    )


def attempt(form: FlaskForm, call: Callable[[], Any]) -> Any:
    """``call()``, or ``None`` with its refusal put on ``form`` next to the field it names."""
    try:
        return call()
    except api.ManagementError as exc:
        refuse(form, exc)
        return None


def refuse(form: FlaskForm, exc: api.ManagementError) -> None:
    """The refusal next to the field it names (the form's first field when it names none)."""
    fields = [field for field in form if field.short_name != "csrf_token"]
    named = [field for field in fields if field.short_name == exc.field]
    field = (named or fields)[0]
    field.errors = [*field.errors, str(exc)]
