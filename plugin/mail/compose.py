"""The composition of mails: the outbox's mails as messages, from plain-text templates.

Subject and body come from ``templates/billing/mail/``; an invoice mail
carries its stored PDF (and, for XRechnung customers, its XML) unchanged.
Header values are made one line, so no customer-chosen text can add a header.
"""

from __future__ import annotations

import functools
import re
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime
from typing import TYPE_CHECKING, Any

from jinja2 import Environment

from .. import validators, wording
from ..resources import template_environment
from ..services.mail_delivery import OutgoingMail
from ..services.periods import Month

if TYPE_CHECKING:
    from .smtp import SmtpSettings


@functools.cache
def _environment(language: str) -> Environment:
    """Plain-text templates in ``language``: nothing is escaped, headers are made one line below.

    The words come from the catalogue (context ``mail``), the amounts and dates
    from Babel in the customer's locale (:mod:`plugin.wording`): a mail is
    written in its customer's language, whoever or whatever sends it.
    """
    return template_environment(
        autoescape=False,
        filters={
            "money": lambda value, currency: wording.money(value, currency, language),
            "month_name": lambda period: wording.month(Month.parse(period).first_day, language),
            "date": lambda value: _date(value, language),
        },
        keep_trailing_newline=True,
        language=language,
    )


def _date(value: datetime | str, language: str) -> str:
    """An instant in UTC to the minute, its day in the customer's form: ``03.12.2026 09:17 UTC``."""
    instant = datetime.fromisoformat(value) if isinstance(value, str) else value
    if instant.tzinfo is not None:
        instant = instant.astimezone(UTC)
    return f"{wording.day(instant.date(), language)} {instant:%H:%M} UTC"


def _render(mail: OutgoingMail, part: str, context: dict[str, Any]) -> str:
    """The mail's ``subject`` or ``body``, in the customer's language."""
    template = _environment(mail.language).get_template(f"billing/mail/{mail.kind}_{part}.txt")
    return template.render(**context)


def compose(mail: OutgoingMail, settings: SmtpSettings, *, now: datetime) -> EmailMessage:
    """The message for ``mail``: subject and body from ``templates/billing/mail/``.

    An invoice mail carries its stored PDF unchanged as ``NUMBER.pdf``; for an
    XRechnung customer also the e-invoice XML as ``NUMBER.xml``.  The texts
    show stored control characters as ``<U+XXXX>`` (:func:`plugin.resources.template_environment`);
    a recipient holding one, stored by hand, is refused
    (:class:`~plugin.validators.InvalidValue`) rather than put in a header.
    """
    try:
        validators.characters(mail.recipient)
    except validators.InvalidValue as exc:
        raise validators.InvalidValue(f"the recipient {mail.recipient!r} {exc}") from None
    context = {"mail": mail.data, "invoice": mail.invoice, "sender": settings.sender}
    message = EmailMessage()
    message["From"] = settings.sender
    message["To"] = mail.recipient
    message["Subject"] = " ".join(_render(mail, "subject", context).split())
    message["Date"] = format_datetime(now)
    message["Message-ID"] = settings.message_id(mail.message_key)
    if mail.data.get("references"):
        message["References"] = settings.message_id(mail.data["references"])
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(_render(mail, "body", context), cte="quoted-printable")
    if mail.invoice is not None:
        message.add_attachment(
            mail.pdf,
            maintype="application",
            subtype="pdf",
            filename=f"{_safe_filename(mail.invoice['number'])}.pdf",
        )
    if mail.invoice is not None and mail.xml is not None:
        message.add_attachment(
            mail.xml,
            maintype="application",
            subtype="xml",
            filename=f"{_safe_filename(mail.invoice['number'])}.xml",
        )
    return message


def as_wire_bytes(message: EmailMessage) -> bytes:
    """The message as sent: CRLF line ends, and no ``>From`` mangling of body lines.

    ``smtplib``'s own ``send_message`` flattens with a generator that turns a
    body line starting with "From " into ">From ", which changes the text.
    """
    return message.as_bytes(policy=message.policy.clone(linesep="\r\n"))


def _safe_filename(number: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", number)
