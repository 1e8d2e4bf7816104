"""Customer billing details in the back-office, and the month-close check.

Accounting edits one workspace's details on a form reached from the
workspace page, or many workspaces' at once by uploading a CSV file.  Both
hand the values to :func:`plugin.services.billing_details.apply_details`,
the service behind the import file and ``flask billing
set-billing-details`` too: the same checks, located errors, nothing changed
on any error, one audit entry per changed workspace.  The check page shows
what closing a month would issue and hold
(:func:`plugin.services.invoicing.plan_month`) and writes nothing.
"""

from __future__ import annotations

import csv
import io
from typing import Any

from flask import abort, flash, redirect, request, url_for
from flask_admin import BaseView, expose
from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from wtforms import SelectField, StringField
from wtforms.validators import Length

from ..extension import billing
from ..formatting import number
from ..i18n import _, _l
from ..services.billing_details import (
    FIELDS,
    STREET_KEYS,
    BillingDetailsError,
    DetailsChange,
    apply_details,
    details_by_workspace,
    empty_details,
    from_input,
)
from ..services.invoicing import InvoicingError, default_close_month, plan_month
from ..services.periods import Month
from ..types import utcnow
from ..validators import LANGUAGES
from .access import allowed
from .base import PermissionMixin, refuse_stale_form
from .workspace_page import load_workspace

#: The CSV file's columns besides ``key``; a column left out leaves its field alone.
CSV_COLUMNS = (
    "legal_name", *STREET_KEYS, "postcode", "city", "country", "vat_id",
    "buyer_reference", "order_reference", "language", "email",
)
MAX_UPLOAD_BYTES = 5 * 1024 * 1024
#: Generous lengths: the service says what is wrong with a value, the form only caps the size.
_TEXT = [Length(max=1000)]


class DetailsForm(FlaskForm):
    legal_name = StringField(_l("Legal name"), _TEXT)
    street = StringField(_l("Street"), _TEXT)
    street2 = StringField(_l("Street (line 2)"), _TEXT)
    street3 = StringField(_l("Street (line 3)"), _TEXT)
    postcode = StringField(_l("Postcode"), _TEXT)
    city = StringField(_l("City"), _TEXT)
    country = StringField(_l("Country (ISO code, e.g. DE, FR, US)"), _TEXT)
    vat_id = StringField(_l("VAT ID"), _TEXT)
    buyer_reference = StringField(_l("Buyer reference / Leitweg-ID (BT-10)"), _TEXT)
    order_reference = StringField(_l("Purchase order (BT-13)"), _TEXT)
    # WTForms takes plain values (pairs are deprecated in 3.3); types-WTForms knows only pairs.
    language = SelectField(_l("Document language"), choices=list(LANGUAGES))  # type: ignore[arg-type]
    email = StringField(_l("Billing e-mail (if not the invoice mailbox)"), _TEXT)

    def fill(self, record: dict[str, Any]) -> None:
        for name in FIELDS:
            if name != "address_lines":
                getattr(self, name).data = record[name] or ""
        lines = list(record["address_lines"]) + ["", "", ""]
        for key, line in zip(STREET_KEYS, lines, strict=False):
            getattr(self, key).data = line

    def values(self) -> dict[str, Any]:
        names = [*STREET_KEYS, *(name for name in FIELDS if name != "address_lines")]
        return {name: getattr(self, name).data for name in names}


class UploadForm(FlaskForm):
    file = FileField(_l("CSV file"), [FileRequired(_l("choose a CSV file"))])


def parse_csv(data: bytes) -> list[DetailsChange]:
    """The CSV's rows as changes (``row N`` as their location); a bad file is refused whole."""
    if len(data) > MAX_UPLOAD_BYTES:
        raise BillingDetailsError(
            {"file": _("is larger than %(bytes)s bytes", bytes=number(MAX_UPLOAD_BYTES))}
        )
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise BillingDetailsError({"file": _("is not UTF-8 text: save it as CSV UTF-8")}) from None
    reader = csv.DictReader(io.StringIO(text, newline=""))
    header = reader.fieldnames or []
    unknown = [name for name in header if name not in ("key", *CSV_COLUMNS)]
    if "key" not in header or unknown:
        problem = (
            _("unknown: %(names)s", names=", ".join(unknown)) if unknown else _("key is missing")
        )
        raise BillingDetailsError({
            "header": _(
                "the first row names the columns: key and any of %(columns)s (%(problem)s)",
                columns=", ".join(CSV_COLUMNS),
                problem=problem,
            )
        })
    changes = []
    for row_number, row in enumerate(reader, start=2):
        if None in row or any(value is None for value in row.values()):
            raise BillingDetailsError(
                {_row(row_number): _("has more or fewer cells than the header")}
            )
        values = {name: value for name, value in row.items() if name != "key"}
        changes.append(DetailsChange(row["key"].strip(), from_input(values), _row(row_number)))
    if not changes:
        raise BillingDetailsError({"file": _("has no rows below the header")})
    return changes


def _row(number: int) -> str:
    return _("row %(number)s", number=number)


class BillingDetailsView(PermissionMixin, BaseView):
    """Edit one workspace's details, upload many, check a month close.

    The view's own permission (the menu entry, the check page) is
    ``check_month``; editing and uploading need their declared actions'
    ``edit_billing_details``, which accounting may hold without the other.
    """

    def is_accessible(self) -> bool:
        return allowed(self.permission) or self.can("edit") or self.can("upload")

    def is_visible(self) -> bool:
        return allowed(self.permission)

    @expose("/")
    def index(self) -> Any:
        """The month-close check: what a close would issue now, and whom it would hold."""
        self.require(self.permission)
        ext = billing()
        rules, now = ext.rules(), utcnow()
        try:
            month = Month.parse(request.args["month"]) if "month" in request.args else None
        except ValueError as exc:
            abort(400, description=str(exc))
        month = month or default_close_month(rules, now)
        try:
            plan = plan_month(ext.session, rules, month, now)
            error = None
        except InvoicingError as exc:
            plan, error = None, str(exc)
        finally:
            ext.session.rollback()
        return self.render(
            "billing/admin/check_month.html",
            month=month,
            plan=plan,
            error=error,
            can_edit=self.can("edit"),
        )

    @expose("/w/<key>", methods=["GET", "POST"])
    def edit(self, key: str) -> Any:
        self.require_action("edit")
        ext = billing()
        workspace = load_workspace(key)
        form = DetailsForm()
        back = url_for("billing_workspaces.workspace_page", key=key) + "#billing-details"
        if request.method == "POST":
            if not form.validate():
                if "csrf_token" in form.errors:
                    refuse_stale_form()
            else:
                try:
                    result = apply_details(
                        ext.session,
                        [DetailsChange(key, from_input(form.values()))],
                        actor=ext.actor(),
                    )
                except BillingDetailsError as exc:
                    ext.session.rollback()
                    _show_errors(form, exc, key)
                else:
                    ext.session.commit()
                    flash(
                        _("Billing details of %(key)s saved.", key=key) if result.changed
                        else _(
                            "Billing details of %(key)s were already as given: nothing changed.",
                            key=key,
                        ),
                        "success" if result.changed else "info",
                    )
                    return redirect(back)
        else:
            record = details_by_workspace(ext.session, [workspace.id]).get(workspace.id)
            form.fill(record or empty_details())
        return self.render(
            "billing/admin/billing_details.html", form=form, workspace=workspace, back=back
        )

    @expose("/upload", methods=["GET", "POST"])
    def upload(self) -> Any:
        """Many workspaces' details from one CSV file: all rows are checked before any is saved."""
        self.require_action("upload")
        form = UploadForm()
        errors: dict[str, str] = {}
        if request.method == "POST":
            if not form.validate():
                if "csrf_token" in form.errors:
                    refuse_stale_form()
            else:
                ext = billing()
                try:
                    changes = parse_csv(form.file.data.read(MAX_UPLOAD_BYTES + 1))
                    result = apply_details(ext.session, changes, actor=ext.actor())
                except BillingDetailsError as exc:
                    ext.session.rollback()
                    errors = exc.errors
                else:
                    ext.session.commit()
                    flash(_("Uploaded: %(summary)s.", summary=result.summary()), "success")
                    return redirect(url_for(".upload"))
        return self.render(
            "billing/admin/billing_details_upload.html",
            form=form,
            errors=errors,
            columns=("key", *CSV_COLUMNS),
        )


def _show_errors(form: DetailsForm, exc: BillingDetailsError, key: str) -> None:
    """Each refused value under its field; nothing was changed."""
    for where, message in exc.errors.items():
        name = where.removeprefix(f"{key}: ")
        field = getattr(form, name, None)
        if field is not None and name in form._fields:
            field.errors = [*field.errors, message]
        else:
            form.form_errors.append(f"{where}: {message}")
    flash(_("Nothing was changed: correct the marked fields."), "error")
