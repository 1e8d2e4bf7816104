"""Customer billing details: validated, stored, audited, and copied onto each invoice.

Every path that sets them (the import file, ``flask billing
set-billing-details``, the workspace page, the CSV upload) goes through
:func:`validate_details` and :func:`apply_details`: the same checks, the
same normalised values, one audit entry per changed workspace with the
values before and after.  A change is validated as a whole before anything
is written, so a refused change changes nothing.

Details may be incomplete while accounting collects them; the month close
holds such a workspace (:func:`missing`) until they are complete.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Text, cast, exists, func, or_, select
from sqlalchemy.orm import Session

from .. import validators
from ..i18n import _, _l
from ..models import BillingDetails, Workspace
from ..rules import PricingRules
from ..rules.vat import VatTreatment, undecided, vat_treatment
from ..types import utcnow
from . import audit
from .common import DIALECT_INSERT as _INSERT
from .mailbox import MailboxError, validate_mailbox

#: The fields of a workspace's billing details, in the order forms and files show them.
FIELDS = (
    "legal_name",
    "address_lines",
    "postcode",
    "city",
    "country",
    "vat_id",
    "buyer_reference",
    "order_reference",
    "language",
    "email",
)
#: The fields as typed, for messages.
INPUT_FIELDS = (
    "legal_name, street, postcode, city, country, vat_id, buyer_reference, "
    "order_reference, language, email"
)
#: What an invoice needs (§14 (4) UStG: the recipient's full name and address), with labels.
REQUIRED = {
    "legal_name": _l("legal name"),
    "address_lines": _l("street"),
    "postcode": _l("postcode"),
    "city": _l("city"),
    "country": _l("country"),
}
MAX_STREET_LINES = 3
#: How the street lines are named where people type them (file, CLI, CSV): ``street``
#: (one line or a list), ``street2``, ``street3``.
STREET_KEYS = ("street", "street2", "street3")
DEFAULT_LANGUAGE = "de"


class BillingDetailsError(ValueError):
    """Refused details: ``errors`` maps each field (or a location) to its message."""

    def __init__(self, errors: Mapping[str, str]) -> None:
        self.errors = dict(errors)
        super().__init__("; ".join(f"{field}: {message}" for field, message in self.errors.items()))


def empty_details() -> dict[str, Any]:
    """The details of a workspace nobody has entered any for."""
    return dict.fromkeys(FIELDS) | {"address_lines": [], "language": DEFAULT_LANGUAGE}


def _blank(value: Any) -> bool:
    """Whether ``value`` clears a field: nothing or spaces (a control character is refused)."""
    return value is None or (isinstance(value, str) and not validators.characters(value).strip())


def _street(value: Any) -> list[str]:
    lines = [value] if isinstance(value, str) else list(value or ())
    lines = [line for line in lines if not _blank(line)]
    if len(lines) > MAX_STREET_LINES:
        raise validators.InvalidValue(
            _("at most %(max)s street lines, not %(count)s", max=MAX_STREET_LINES, count=len(lines))
        )
    return [validators.text_line(line, max_length=200) for line in lines]


def _email(value: Any) -> str:
    try:
        return validate_mailbox(value)
    except MailboxError as exc:
        raise validators.InvalidValue(str(exc)) from None


_CHECKS = {
    "legal_name": lambda value: validators.text_line(value, max_length=200),
    "postcode": lambda value: validators.text_line(value, max_length=20),
    "city": lambda value: validators.text_line(value, max_length=100),
    "country": validators.country_code,
    "buyer_reference": validators.buyer_reference,
    "order_reference": lambda value: validators.text_line(value, max_length=100),
    "language": validators.language,
    "email": _email,
}


def from_input(values: Mapping[str, Any]) -> dict[str, Any]:
    """Changes as typed (``street``, ``street2``, ``street3``) in the stored fields' names."""
    changes = {name: value for name, value in values.items() if name not in STREET_KEYS}
    if any(key in values for key in STREET_KEYS):
        lines: list[Any] = []
        for key in STREET_KEYS:
            value = values.get(key)
            lines.extend(value if isinstance(value, list | tuple) else [value])
        changes["address_lines"] = lines
    return changes


def validate_details(
    current: Mapping[str, Any] | None, changes: Mapping[str, Any]
) -> dict[str, Any]:
    """The complete record after ``changes`` (a blank value clears a field), normalised.

    Raises :class:`BillingDetailsError` naming every refused field.  The VAT
    ID is checked against the country of the resulting record, so changing
    only the country re-checks the VAT ID already stored.
    """
    problem = _("unknown field; the fields are: %(fields)s", fields=INPUT_FIELDS)
    errors = dict.fromkeys(sorted(set(changes) - set(FIELDS)), problem)
    record = {**empty_details(), **(current or {})}
    for name, value in changes.items():
        if name in errors:
            continue
        try:
            if name == "address_lines":
                record[name] = _street(value)
            elif _blank(value):
                record[name] = DEFAULT_LANGUAGE if name == "language" else None
            elif name != "vat_id":
                record[name] = _CHECKS[name](value)
            else:
                record[name] = value
        except validators.InvalidValue as exc:
            errors["street" if name == "address_lines" else name] = str(exc)
    recheck = "vat_id" in changes or "country" in changes
    if record["vat_id"] and "country" not in errors and recheck:
        try:
            record["vat_id"] = validators.vat_id(record["vat_id"], record["country"])
        except validators.InvalidValue as exc:
            errors["vat_id"] = str(exc)
    if errors:
        raise BillingDetailsError(errors)
    return record


def missing(record: Mapping[str, Any] | None, mailbox: str | None = None) -> list[str]:
    """What an invoice to this customer still lacks, as labels (empty: complete).

    An XRechnung customer (a Leitweg-ID as buyer reference) also needs an
    electronic address (BT-49): the billing e-mail or the invoice mailbox.
    """
    record = record or empty_details()
    lacking = [str(label) for name, label in REQUIRED.items() if not record.get(name)]
    if validators.is_leitweg_id(record.get("buyer_reference")) and not (
        record.get("email") or mailbox
    ):
        lacking.append(_("e-mail address (an XRechnung customer needs one)"))
    return lacking


def maybe_incomplete() -> ColumnElement[bool]:
    """The workspace (``Workspace`` in the query) may lack what :func:`missing` asks for:
    no details, a required field empty, or a buyer reference (an XRechnung customer)
    with no e-mail address.  A superset: :func:`missing` decides, row by row."""
    row = BillingDetails
    filled = [
        func.coalesce(getattr(row, name), "") != "" for name in REQUIRED if name != "address_lines"
    ]
    complete = select(row.workspace_id).where(
        row.workspace_id == Workspace.id,
        *filled,
        row.address_lines.is_not(None),
        cast(row.address_lines, Text).not_in(("[]", "null")),
        or_(
            func.coalesce(row.buyer_reference, "") == "",
            func.coalesce(row.email, "") != "",
            func.coalesce(Workspace.invoice_mailbox, "") != "",
        ),
    )
    return ~exists(complete)


@dataclass(frozen=True)
class CustomerVat:
    """The VAT the month close applies to one workspace's invoice, and what its billing
    details still lack (the close holds the workspace until they are complete)."""

    treatment: VatTreatment
    missing: tuple[str, ...]


def customer_vat(
    rules: PricingRules, record: Mapping[str, Any] | None, mailbox: str | None = None
) -> CustomerVat:
    """The close's VAT decision for a customer with these billing details.

    The close, ``flask billing check-month``, ``flask billing rules explain``
    and the rules editor's preview all decide through here.  The decision
    needs the country (and the VAT ID); without a country it is
    :func:`~plugin.rules.vat.undecided`.
    """
    record = record or empty_details()
    country = record.get("country")
    treatment = vat_treatment(rules, country, record.get("vat_id")) if country else undecided(rules)
    return CustomerVat(treatment, tuple(missing(record, mailbox)))


def buyer_snapshot(record: Mapping[str, Any], mailbox: str | None) -> dict[str, Any]:
    """The customer as an invoice records it (``Invoice.buyer``): complete details only."""
    return {
        "legal_name": record["legal_name"],
        "address_lines": list(record["address_lines"]),
        "postcode": record["postcode"],
        "city": record["city"],
        "country": record["country"],
        "vat_id": record["vat_id"],
        "buyer_reference": record["buyer_reference"],
        "order_reference": record["order_reference"],
        "language": record["language"] or DEFAULT_LANGUAGE,
        "email": record["email"] or mailbox,
        "einvoice_syntax": (
            "xrechnung" if validators.is_leitweg_id(record["buyer_reference"]) else "factur-x"
        ),
    }


def _as_record(row: BillingDetails) -> dict[str, Any]:
    return {name: getattr(row, name) for name in FIELDS} | {
        "address_lines": list(row.address_lines or ())
    }


def details_by_workspace(
    session: Session, workspace_ids: Iterable[int] | None = None
) -> dict[int, dict[str, Any]]:
    """The stored details of some (or all) workspaces by id: one query."""
    query = select(BillingDetails)
    if workspace_ids is not None:
        query = query.where(BillingDetails.workspace_id.in_(list(workspace_ids)))
    return {row.workspace_id: _as_record(row) for row in session.scalars(query)}


@dataclass(frozen=True)
class DetailsChange:
    """One workspace's change, for :func:`apply_details`; ``location`` names it in errors."""

    key: str
    changes: Mapping[str, Any]
    location: str = ""


@dataclass(frozen=True)
class DetailsResult:
    changed: tuple[str, ...]
    unchanged: tuple[str, ...]

    def summary(self) -> str:
        return _(
            "billing details changed for %(changed)s workspace(s), %(unchanged)s already as given",
            changed=len(self.changed),
            unchanged=len(self.unchanged),
        )


def apply_details(
    session: Session, changes: Sequence[DetailsChange], *, actor: str
) -> DetailsResult:
    """Validate every change, then write them all, audited; in the session's transaction.

    Raises :class:`BillingDetailsError` (keys ``location: field`` or
    ``location``) before writing anything when any change is refused.  The
    caller commits.
    """
    keys = [change.key for change in changes]
    workspaces = {
        ws.key: ws for ws in session.execute(
            select(Workspace.id, Workspace.key).where(Workspace.key.in_(keys))
        )
    }
    current = details_by_workspace(session, [ws.id for ws in workspaces.values()])
    errors: dict[str, str] = {}
    planned: list[tuple[Any, dict[str, Any] | None, dict[str, Any]]] = []
    seen: dict[str, str] = {}
    for change in changes:
        where = change.location or change.key
        if change.key in seen:
            errors[where] = _(
                "workspace %(key)s is already changed at %(where)s",
                key=change.key,
                where=seen[change.key],
            )
            continue
        seen[change.key] = where
        workspace = workspaces.get(change.key)
        if workspace is None:
            errors[where] = _("no workspace with the key %(key)r", key=change.key)
            continue
        before = current.get(workspace.id)
        try:
            after = validate_details(before, change.changes)
        except BillingDetailsError as exc:
            errors.update({f"{where}: {field}": message for field, message in exc.errors.items()})
            continue
        planned.append((workspace, before, after))
    if errors:
        raise BillingDetailsError(errors)
    changed, unchanged = [], []
    now = utcnow()
    rows, entries = [], []
    for workspace, before, after in planned:
        if before == after:
            unchanged.append(workspace.key)
            continue
        changed.append(workspace.key)
        rows.append({"workspace_id": workspace.id, **after, "updated_at": now})
        entries.append({
            "workspace_id": workspace.id,
            "target": workspace.key,
            "before": before,
            "after": after,
        })
    if rows:
        insert = _INSERT[session.get_bind().dialect.name](BillingDetails)
        session.execute(
            insert.on_conflict_do_update(
                index_elements=["workspace_id"],
                set_={name: insert.excluded[name] for name in (*FIELDS, "updated_at")},
            ),
            rows,
        )
        audit.record_many(session, actor, "billing_details", entries)
    return DetailsResult(tuple(changed), tuple(unchanged))


def set_billing_details(
    session: Session, key: str, changes: Mapping[str, Any], *, actor: str
) -> DetailsResult:
    """Change one workspace's details (the fields in ``changes`` only): :func:`apply_details`."""
    return apply_details(session, [DetailsChange(key, changes)], actor=actor)
