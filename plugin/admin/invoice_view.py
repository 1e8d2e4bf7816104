"""Invoices and credit notes: list, PDF download, credit notes for accounting."""

from __future__ import annotations

from typing import Any

from flask import abort, flash, g, redirect, request, url_for
from flask_admin import expose
from flask_wtf import FlaskForm
from markupsafe import Markup
from sqlalchemy import select
from wtforms import TextAreaField
from wtforms.validators import DataRequired, Length

from ..extension import billing
from ..formatting import amount
from ..i18n import _, _l, ngettext
from ..jobs import try_now
from ..models import Invoice
from ..services.closed import standing_after
from ..services.invoice_detail import invoice_page
from ..services.invoicing import InvoicingError, issue_credit_note
from ..services.mail_status import deliveries, delivery_status
from ..services.outbox import MailError, resend_invoice
from ..types import utcnow
from .base import (
    BillingModelView,
    CsrfForm,
    licences_label,
    local_minute,
    refuse_stale_form,
    workspace_link,
)
from .filters import (
    VARIANT_CHOICES,
    ChoiceFilter,
    InvoicePeriods,
    InvoiceStatusFilter,
    invoice_problem_filters,
)
from .responses import pdf_response, xml_response


class CreditNoteForm(FlaskForm):
    # Generous: the service says what is wrong with an over-long reason.
    reason = TextAreaField(
        _l("Reason (printed on the credit note)"), [DataRequired(), Length(max=5000)]
    )


def _licences(view: InvoiceView, context: Any, model: Invoice, name: str) -> str:
    return licences_label(model.quantity, model.variant)


def _number(view: InvoiceView, context: Any, model: Invoice, name: str) -> Markup:
    """The number, linking to the invoice's page."""
    return Markup('<a href="{}">{}</a>').format(url_for(".details_view", id=model.id), model.number)


def _amount(view: InvoiceView, context: Any, model: Invoice, name: str) -> str:
    """Net, VAT or gross with the invoice's currency, in the page's locale."""
    return amount(getattr(model, name), model.currency)


def _status(view: InvoiceView, context: Any, model: Invoice, name: str) -> str:
    return _("credited") if model.id in g.billing_credited else _("issued")


def einvoice_problem(model: Invoice) -> Markup:
    """Why an invoice is held: its e-invoice's broken rules, ids and messages, as text."""
    items = Markup("").join(
        Markup("<li><code>{}</code> {}</li>").format(f["rule"], f["message"])
        for f in model.einvoice_failures or ()
    )
    return Markup(
        "<span class='text-danger einvoice-invalid'>{}<ul class='small mb-0'>{}</ul></span>"
    ).format(_("e-invoice invalid, not final"), items)


def _documents(view: InvoiceView, context: Any, model: Invoice, name: str) -> Markup:
    """The PDF (and XML) download and, for an invoice not credited yet, *Credit…*, as the
    role allows.  An invoice whose e-invoice failed validation offers neither."""
    if model.einvoice_status == "invalid":
        pdf = einvoice_problem(model)
    elif not model.pdf_sha256:
        pdf = Markup("<span class='text-muted'>{}</span>").format(_("being rendered"))
    elif view.can("download"):
        pdf = Markup('<a href="{}">PDF</a>').format(url_for(".invoice_pdf", number=model.number))
        if model.einvoice_status == "valid":
            pdf += Markup(' · <a href="{}">XML</a>').format(
                url_for(".invoice_xml", number=model.number)
            )
    else:
        pdf = Markup("")
    if model.kind != "invoice" or model.id in g.billing_credited or not view.can("credit"):
        return pdf
    credit = url_for(".credit_note", number=model.number)
    return pdf + Markup('<br><a href="{}">{}</a>').format(credit, _("Credit…"))


def _mail(view: InvoiceView, context: Any, model: Invoice, name: str) -> Markup:
    """The delivery at a glance: status, recipient, tries, last error; a link to its history."""
    delivery = g.billing_mail.get(model.number)
    if delivery is None:
        return Markup("<span class='text-muted'>{}</span>").format(_("not e-mailed"))
    tries = ngettext(
        "to %(recipient)s, %(num)d attempt",
        "to %(recipient)s, %(num)d attempts",
        delivery.attempts,
        recipient=delivery.latest.recipient or "—",
    )
    text = Markup("{} <small class='text-muted'>{}</small>").format(delivery.status, tries)
    if delivery.last_error:
        text += Markup("<br><small class='text-danger'>{}</small>").format(delivery.last_error)
    link = Markup('<br><a href="{}">{}</a>').format(
        url_for(".mail", number=model.number),
        _("History, resend…") if view.can("resend") else _("History"),
    )
    return text + link


class InvoiceView(BillingModelView):
    column_list = (
        "number",
        "kind",
        "workspace_key",
        "period",
        "quantity",
        "net",
        "tax",
        "gross",
        "status",
        "mail",
        "pdf",
    )
    column_labels = {
        "number": _l("Number"),
        "kind": _l("Kind"),
        "workspace_key": _l("Workspace"),
        "workspace_name": _l("workspace name"),
        "period": _l("Period"),
        "variant": _l("Variant"),
        "quantity": _l("Licences"),
        "net": _l("Net"),
        "tax": _l("VAT"),
        "gross": _l("Gross"),
        "status": _l("Status"),
        "pdf": _l("PDF"),
        "mail": _l("E-mail"),
    }
    column_formatters = {
        "number": _number,
        "quantity": _licences,
        "net": _amount,
        "tax": _amount,
        "gross": _amount,
        "status": _status,
        "kind": lambda view, context, model, name: (
            _("credit note") if model.kind == "credit_note" else _("invoice")
        ),
        "mail": _mail,
        "pdf": _documents,
    }
    column_searchable_list = ("number", "workspace_key", "workspace_name")
    column_filters = (
        ChoiceFilter(Invoice.period, _l("Period"), InvoicePeriods()),
        "workspace_key",
        "number",
        ChoiceFilter(
            Invoice.kind,
            _l("Kind"),
            [("invoice", _l("invoice")), ("credit_note", _l("credit note"))],
        ),
        ChoiceFilter(Invoice.variant, _l("Variant"), VARIANT_CHOICES),
        InvoiceStatusFilter(),
        "quantity",
        "net",
        "tax",
        "gross",
        *invoice_problem_filters(),
    )
    column_sortable_list = ("number", "period", "workspace_key", "gross")
    column_default_sort = ("id", True)
    column_details_exclude_list = ("pdf", "einvoice_xml")

    def page_data(self, rows: list[Any]) -> dict[str, Any]:
        """Which of the page's invoices are credited, and their mail's state."""
        session = billing().session
        ids = [invoice.id for invoice in rows]
        credited = select(Invoice.credits_invoice_id).where(Invoice.credits_invoice_id.in_(ids))
        return {
            "credited": set(session.scalars(credited)),
            "mail": delivery_status(session, [invoice.number for invoice in rows]),
        }

    @expose("/details/")
    def details_view(self) -> Any:
        """The invoice's page: its lines as a table, the totals, the customer, the link to its
        credit note (or to the invoice a credit note credits), the mail deliveries, and the
        PDF and XML downloads, as the role allows."""
        try:
            page = invoice_page(billing().session, int(request.args.get("id", "")))
        except ValueError:
            page = None
        if page is None:
            abort(404, description=_("No invoice with this id."))
        invoice = page.invoice
        return self.render(
            "billing/admin/invoice_details.html",
            page=page,
            invoice=invoice,
            einvoice_problem=einvoice_problem(invoice)
            if invoice.einvoice_status == "invalid"
            else None,
            can_download=self.can("download"),
            can_credit=self.can("credit") and invoice.kind == "invoice" and page.related is None,
            when=local_minute,
            workspace_link=workspace_link,
        )

    @expose("/pdf/<path:number>")
    def invoice_pdf(self, number: str) -> Any:
        self.require_action("download")
        return pdf_response(number)

    @expose("/xml/<path:number>")
    def invoice_xml(self, number: str) -> Any:
        self.require_action("download")
        return xml_response(number)

    @expose("/mail/<path:number>", methods=["GET", "POST"])
    def mail(self, number: str) -> Any:
        """Every delivery of the invoice (status, attempts, errors); accounting resends here."""
        ext = billing()
        invoice = ext.session.scalar(select(Invoice).where(Invoice.number == number))
        if invoice is None:
            abort(404)
        form = CsrfForm()
        if request.method == "POST":
            self.require_action("resend")
            if not form.validate_on_submit():
                refuse_stale_form()
            try:
                resend = resend_invoice(ext.session, number, actor=ext.actor())
            except MailError as exc:
                ext.session.rollback()
                flash(_("Not resent: %(reason)s.", reason=exc), "error")
            else:
                ext.session.commit()
                if try_now(mails=[resend.message_key]).sent:
                    flash(
                        _(
                            "Invoice %(number)s sent to %(recipient)s.",
                            number=number,
                            recipient=resend.recipient,
                        ),
                        "success",
                    )
                else:
                    flash(
                        _(
                            "Invoice %(number)s queued for %(recipient)s; the worker sends it (or "
                            "the next `flask billing send-invoices`).",
                            number=number,
                            recipient=resend.recipient,
                        ),
                        "success",
                    )
            return redirect(url_for(".mail", number=number))
        history = deliveries(ext.session, invoice_number=number)
        return self.render(
            "billing/admin/invoice_mail.html",
            invoice=invoice,
            deliveries=history,
            on_its_way=any(delivery.pending for delivery in history),
            mailbox=invoice.workspace.invoice_mailbox,
            einvoice_problem=einvoice_problem(invoice) if invoice.einvoice_status == "invalid"
            else None,
            form=form,
            can_resend=self.can("resend"),
            when=local_minute,
        )

    @expose("/credit/<path:number>", methods=["GET", "POST"])
    def credit_note(self, number: str) -> Any:
        self.require_action("credit")
        form = CreditNoteForm()
        if form.validate_on_submit():
            ext = billing()
            try:
                credit = issue_credit_note(
                    ext.session,
                    ext.rules(),
                    number,
                    form.reason.data or "",
                    utcnow(),
                    actor=ext.actor(),
                )
            except InvoicingError as exc:
                ext.session.rollback()
                if exc.field == "reason":
                    form.reason.errors = [*form.reason.errors, str(exc)]
                else:
                    flash(str(exc), "error")
            else:
                ext.session.commit()
                ready = try_now(invoices=[credit.note.number]).rendered
                pdf = _("Its PDF is ready.") if ready else _("The worker renders its PDF.")
                flash(
                    " ".join([*credit.lines(ext.zone()), pdf]),
                    "success" if credit.reopening.reopened else "info",
                )
                # The credit note's page: its PDF, and the link back to the invoice it credits.
                return redirect(url_for(".details_view", id=credit.note.id))
        elif request.method == "POST" and not form.errors.get("reason"):
            refuse_stale_form()
        session = billing().session
        invoice = session.scalar(select(Invoice).where(Invoice.number == number))
        if invoice is None:
            abort(404)
        return self.render(
            "billing/admin/credit_note.html",
            form=form,
            invoice=invoice,
            later=standing_after(session, invoice.workspace_id, invoice.period),
        )
