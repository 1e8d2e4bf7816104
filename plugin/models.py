"""The plugin's tables: workspaces, teams, people and their history.

The models live on their own ``MetaData`` (not the host's ``db.Model``) so that
the host's own migrations never see them and the plugin's Alembic history
(``migrations/``) owns them alone.  They are ordinary SQLAlchemy mapped
classes, so the host's Flask-SQLAlchemy session queries and persists them on
the host's engine.

History is kept as half-open intervals ``[start, end)``; ``end`` is NULL while
the interval is open.  Nothing here is ever deleted by the plugin: archiving,
unarchiving, leaving a team and losing workspace access close or open
intervals, so any past month can be recomputed identically.

It stays one module (about 600 lines) on purpose: the tables, their
constraints and their relationships refer to each other, and the Alembic
history in ``migrations/`` mirrors them as one schema; split, each half would
import the other.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, query_expression, relationship

from .rules.model import VARIANTS as VARIANTS
from .types import ExactDecimal, UTCDateTime, utcnow

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_N_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    if TYPE_CHECKING:
        # Every model here is mapped to a Table (not a select or a join).
        __table__: ClassVar[Table]

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UTCDateTime, Decimal: ExactDecimal}


def index_where(name: str, condition: str, *columns: str, unique: bool = False) -> Index:
    """A partial index on SQLite and PostgreSQL: only the rows ``condition`` holds for."""
    return Index(
        name,
        *columns,
        unique=unique,
        sqlite_where=text(condition),
        postgresql_where=text(condition),
    )


def unique_where(name: str, condition: str, *columns: str) -> Index:
    """A partial unique index, e.g. "at most one open interval per team and person"."""
    return index_where(name, condition, *columns, unique=True)


def _variant_check(column: str) -> CheckConstraint:
    allowed = ", ".join(f"'{v}'" for v in VARIANTS)
    return CheckConstraint(f"{column} IS NULL OR {column} IN ({allowed})", name=f"{column}_valid")


class Workspace(Base):
    __tablename__ = "billing_workspace"
    __table_args__ = (_variant_check("contract_variant"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(63), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime]
    contract_variant: Mapped[str | None] = mapped_column(String(20))
    invoice_mailbox: Mapped[str | None] = mapped_column(String(254))
    #: The workspace's stamp, read by the list page's own query
    #: (:func:`plugin.services.counts.listed_stamp`); ``None`` when not loaded so.
    listed_stamp: Mapped[int | None] = query_expression()

    teams: Mapped[list[Team]] = relationship(back_populates="workspace", order_by="Team.key")
    owners: Mapped[list[Person]] = relationship(
        secondary="billing_workspace_owner", order_by="Person.email"
    )

    def __str__(self) -> str:
        return f"{self.name} ({self.key})"


class WorkspaceStamp(Base):
    """A value that changes whenever anything a workspace's current counts are made of does.

    Database triggers (migration 0007) write it on every insert, update and
    delete of the workspace's teams, archive periods, team memberships and
    access, whoever makes the change: a service, the host or raw SQL.  The
    list page keeps the counts it computed under a stamp and reuses them
    while the stamp is unchanged (:class:`plugin.services.counts.CountsCache`).
    SQLite writes a fresh random 64-bit value per changed row; PostgreSQL
    writes the id of the writing transaction, once per transaction and
    workspace, which keeps a bulk load from rewriting the row for every one
    of its rows.
    """

    __tablename__ = "billing_workspace_stamp"

    workspace_id: Mapped[int] = mapped_column(
        ForeignKey("billing_workspace.id", ondelete="CASCADE"), primary_key=True
    )
    stamp: Mapped[int] = mapped_column(BigInteger)


class MonthLicences(Base):
    """A workspace's licences in a month not invoiced, as last counted, and what they
    were counted under: the dashboard's maintained aggregate.

    Written by :mod:`plugin.services.month_licences` whenever it counts a
    workspace anew; a row serves only while the workspace's stamp, its variant
    and the month's first instant are those it was counted under, and until
    ``valid_until`` (``None``: the month had ended, the count is final).  A
    stale row is recounted, never trusted, so a row missed by a crashed
    request or written by an older release costs one recount, not a wrong
    figure.
    """

    __tablename__ = "billing_month_licences"
    __table_args__ = (_variant_check("variant"),)

    workspace_id: Mapped[int] = mapped_column(
        ForeignKey("billing_workspace.id", ondelete="CASCADE"), primary_key=True
    )
    period: Mapped[str] = mapped_column(String(7), primary_key=True)
    starts_at: Mapped[datetime]
    variant: Mapped[str] = mapped_column(String(20))
    stamp: Mapped[int] = mapped_column(BigInteger)
    licences: Mapped[int]
    valid_until: Mapped[datetime | None]


LANGUAGES = ("de", "en")


class BillingDetails(Base):
    """Who a workspace's invoices are addressed to: the customer's legal name and address.

    One row per workspace, written only through
    :mod:`plugin.services.billing_details` (every path validates with
    :mod:`plugin.validators`).  The fields a §14 UStG invoice needs may be
    empty while accounting collects them; the month close holds a workspace
    until they are all there (:func:`plugin.services.billing_details.missing`).
    An issued invoice keeps its own copy (``Invoice.buyer``), so a later
    change never alters it.
    """

    __tablename__ = "billing_details"
    __table_args__ = (
        CheckConstraint(f"language IN {LANGUAGES!r}", name="language_valid"),
    )

    workspace_id: Mapped[int] = mapped_column(
        ForeignKey("billing_workspace.id", ondelete="CASCADE"), primary_key=True
    )
    legal_name: Mapped[str | None] = mapped_column(String(200))
    #: The street lines of the postal address (1 to 3), without postcode, city and country.
    address_lines: Mapped[Any] = mapped_column(JSON, default=list)
    postcode: Mapped[str | None] = mapped_column(String(20))
    city: Mapped[str | None] = mapped_column(String(100))
    #: ISO 3166-1 alpha-2, upper case.
    country: Mapped[str | None] = mapped_column(String(2))
    #: Normalised: country prefix and digits, no spaces ("FR40303265045").
    vat_id: Mapped[str | None] = mapped_column(String(20))
    #: BT-10; a valid Leitweg-ID makes the customer an XRechnung customer.
    buyer_reference: Mapped[str | None] = mapped_column(String(100))
    #: BT-13, the customer's purchase-order reference.
    order_reference: Mapped[str | None] = mapped_column(String(100))
    language: Mapped[str] = mapped_column(String(2), default="de")
    #: The buyer's electronic address (BT-49) when it is not the invoice mailbox.
    email: Mapped[str | None] = mapped_column(String(254))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)

    workspace: Mapped[Workspace] = relationship()


class Person(Base):
    """Somebody who can be given access to workspaces.

    ``email`` is stored normalised (domain and local part lower-cased), which
    is what makes it unique case-insensitively on every database.
    """

    __tablename__ = "billing_person"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    name: Mapped[str] = mapped_column(String(200), default="")

    def __str__(self) -> str:
        return f"{self.name} <{self.email}>" if self.name else self.email


class WorkspaceOwner(Base):
    __tablename__ = "billing_workspace_owner"

    workspace_id: Mapped[int] = mapped_column(
        ForeignKey("billing_workspace.id", ondelete="CASCADE"), primary_key=True
    )
    person_id: Mapped[int] = mapped_column(
        ForeignKey("billing_person.id", ondelete="CASCADE"), primary_key=True, index=True
    )


class Team(Base):
    __tablename__ = "billing_team"
    __table_args__ = (
        UniqueConstraint("workspace_id", "key"),
        # The team list's default order.
        Index("ix_billing_team_key", "key"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    workspace_id: Mapped[int] = mapped_column(
        ForeignKey("billing_workspace.id", ondelete="CASCADE")
    )
    key: Mapped[str] = mapped_column(String(63))
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime]

    workspace: Mapped[Workspace] = relationship(back_populates="teams")
    archive_periods: Mapped[list[TeamArchivePeriod]] = relationship(
        back_populates="team", order_by="TeamArchivePeriod.archived_from"
    )

    def __str__(self) -> str:
        return self.name


class TeamArchivePeriod(Base):
    """One archived period ``[archived_from, unarchived_at)`` of a team.

    Periods of one team never overlap or touch (the import and the archive
    service merge them), so "archived for the whole of an interval" is a
    question about a single row.
    """

    __tablename__ = "billing_team_archive_period"
    __table_args__ = (
        UniqueConstraint("team_id", "archived_from"),
        CheckConstraint(
            "unarchived_at IS NULL OR unarchived_at > archived_from", name="positive_length"
        ),
        unique_where("uq_billing_team_archive_period_open", "unarchived_at IS NULL", "team_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    team_id: Mapped[int] = mapped_column(ForeignKey("billing_team.id", ondelete="CASCADE"))
    archived_from: Mapped[datetime]
    unarchived_at: Mapped[datetime | None]

    team: Mapped[Team] = relationship(back_populates="archive_periods")


class WorkspaceAccess(Base):
    """An interval ``[granted_at, revoked_at)`` during which a person could use a workspace."""

    __tablename__ = "billing_workspace_access"
    __table_args__ = (
        UniqueConstraint("workspace_id", "person_id", "granted_at"),
        CheckConstraint("revoked_at IS NULL OR revoked_at >= granted_at", name="ordered"),
        unique_where(
            "uq_billing_workspace_access_open", "revoked_at IS NULL", "workspace_id", "person_id"
        ),
        # Covering: "members now" per workspace, and the purge, read only the index.
        Index(
            "ix_billing_workspace_access_span",
            "workspace_id",
            "granted_at",
            "revoked_at",
            "person_id",
        ),
        # The member list's default order (newest access first).
        Index("ix_billing_workspace_access_granted_at", "granted_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    workspace_id: Mapped[int] = mapped_column(
        ForeignKey("billing_workspace.id", ondelete="CASCADE")
    )
    person_id: Mapped[int] = mapped_column(
        ForeignKey("billing_person.id", ondelete="CASCADE"), index=True
    )
    granted_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]

    workspace: Mapped[Workspace] = relationship()
    person: Mapped[Person] = relationship()


class TeamMembership(Base):
    """An interval ``[joined_at, left_at)`` during which a person belonged to a team."""

    __tablename__ = "billing_team_membership"
    __table_args__ = (
        UniqueConstraint("team_id", "person_id", "joined_at"),
        CheckConstraint("left_at IS NULL OR left_at >= joined_at", name="ordered"),
        unique_where("uq_billing_team_membership_open", "left_at IS NULL", "team_id", "person_id"),
        # Covering: licences and counts of some workspaces' teams read only the index
        # (a team's rows are scattered over the table; see migration 0006).
        Index("ix_billing_team_membership_span", "team_id", "joined_at", "left_at", "person_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    team_id: Mapped[int] = mapped_column(ForeignKey("billing_team.id", ondelete="CASCADE"))
    person_id: Mapped[int] = mapped_column(
        ForeignKey("billing_person.id", ondelete="CASCADE"), index=True
    )
    joined_at: Mapped[datetime]
    left_at: Mapped[datetime | None]

    team: Mapped[Team] = relationship()
    person: Mapped[Person] = relationship()


class AuditEntry(Base):
    """Who changed what, when, with the values before and after."""

    __tablename__ = "billing_audit_entry"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(String(254), index=True)
    action: Mapped[str] = mapped_column(String(63), index=True)
    workspace_id: Mapped[int | None] = mapped_column(
        ForeignKey("billing_workspace.id", ondelete="SET NULL"), index=True
    )
    target: Mapped[str] = mapped_column(String(300), default="")
    before: Mapped[Any | None] = mapped_column(JSON)
    after: Mapped[Any | None] = mapped_column(JSON)
    detail: Mapped[str] = mapped_column(Text, default="")

    workspace: Mapped[Workspace | None] = relationship()
    #: The start of ``before`` / ``after`` as stored, when a query asks for it (the
    #: audit list: a purge's entry lists every removed person, megabytes of JSON).
    before_excerpt: Mapped[str | None] = query_expression()
    after_excerpt: Mapped[str | None] = query_expression()


class RulesVersion(Base):
    """A pricing-rules file content that priced something, kept verbatim.

    Invoices reference it by ``sha256``, so an invoice can always show exactly
    which rules priced it, whatever the file says today.
    """

    __tablename__ = "billing_rules_version"

    id: Mapped[int] = mapped_column(primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64), unique=True)
    content: Mapped[str] = mapped_column(Text)
    first_used_at: Mapped[datetime] = mapped_column(default=utcnow)


INVOICE_KINDS = ("invoice", "credit_note")
#: An invoice that stands: no credit note credits it.
CURRENT_INVOICE = "kind = 'invoice' AND credited_by_id IS NULL"
#: EN 16931 VAT categories the plugin issues: standard, reverse charge, not subject to VAT.
VAT_CATEGORIES = ("S", "AE", "O")
#: An e-invoice passed or failed its validation (XSD, EN 16931, XRechnung rules).
EINVOICE_STATUSES = ("valid", "invalid")
#: The rows of the dashboard's "e-invoices invalid" counter (a partial index: a handful of rows).
EINVOICE_INVALID = "einvoice_status = 'invalid'"


class InvoiceSequence(Base):
    """The last invoice number used in a year.

    Numbers are taken by ``UPDATE … SET last_seq = last_seq + 1`` inside the
    transaction that inserts the invoice, so the row lock serialises
    concurrent month closes and a rolled-back invoice gives its number back:
    unique and gap-free per year, enforced by the database.
    """

    __tablename__ = "billing_invoice_sequence"

    year: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    last_seq: Mapped[int] = mapped_column(default=0)


class Invoice(Base):
    """An issued invoice or credit note.  Never changes after issue, except its PDF and,
    on an invoice, ``credited_by_id`` when a credit note credits it.

    Everything printed is stored as it was at issue (workspace name, seller,
    lines, totals, the rules' sha256), so a later rename or a new price list
    can never alter an issued document.

    A workspace has at most one *current* invoice per month: one no credit
    note credits (a partial unique index).  Crediting it makes room for the
    corrected invoice that a new close of the month issues
    (:func:`plugin.services.invoicing.close_month`).
    """

    __tablename__ = "billing_invoice"
    __table_args__ = (
        UniqueConstraint("year", "seq"),
        CheckConstraint(f"kind IN {INVOICE_KINDS!r}", name="kind_valid"),
        CheckConstraint(
            "(kind = 'invoice') = (credits_invoice_id IS NULL)", name="credit_note_refers"
        ),
        unique_where(
            "uq_billing_invoice_workspace_period_current",
            CURRENT_INVOICE,
            "workspace_id",
            "period",
        ),
        CheckConstraint(
            f"vat_category IS NULL OR vat_category IN {VAT_CATEGORIES!r}",
            name="vat_category_valid",
        ),
        CheckConstraint(
            f"einvoice_status IS NULL OR einvoice_status IN {EINVOICE_STATUSES!r}",
            name="einvoice_status_valid",
        ),
        # Covers the dashboard's per-month totals: read from the index alone, already
        # grouped (on SQLite a third of the time of the period index and the rows).
        Index("ix_billing_invoice_month_totals", "period", "variant", "kind", "quantity", "net"),
        index_where("ix_billing_invoice_pdf_pending", "pdf_sha256 IS NULL", "pdf_attempts"),
        index_where("ix_billing_invoice_einvoice_invalid", EINVOICE_INVALID, "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(40), unique=True)
    year: Mapped[int]
    seq: Mapped[int]
    kind: Mapped[str] = mapped_column(String(20))
    workspace_id: Mapped[int] = mapped_column(ForeignKey("billing_workspace.id"))
    workspace_key: Mapped[str] = mapped_column(String(63))
    workspace_name: Mapped[str] = mapped_column(String(200))
    period: Mapped[str] = mapped_column(String(7))
    issued_at: Mapped[datetime]
    variant: Mapped[str] = mapped_column(String(20))
    quantity: Mapped[int]
    currency: Mapped[str] = mapped_column(String(3))
    tax_rate: Mapped[Decimal]
    net: Mapped[Decimal]
    tax: Mapped[Decimal]
    gross: Mapped[Decimal]
    lines: Mapped[Any] = mapped_column(JSON)
    seller: Mapped[Any] = mapped_column(JSON)
    # Since migration 0008 (NULL on invoices issued before it, whose PDF stays as stored):
    #: The customer as invoiced (see :func:`plugin.services.billing_details.buyer_snapshot`).
    buyer: Mapped[Any | None] = mapped_column(JSON)
    vat_category: Mapped[str | None] = mapped_column(String(2))
    vat_exemption_code: Mapped[str | None] = mapped_column(String(20))
    #: Printed on the document and the exemption reason text (BT-120) where one applies.
    vat_note: Mapped[str | None] = mapped_column(Text)
    service_start: Mapped[date | None] = mapped_column(Date)
    service_end: Mapped[date | None] = mapped_column(Date)
    due_date: Mapped[date | None] = mapped_column(Date)
    payment_terms: Mapped[str | None] = mapped_column(Text)
    rules_sha256: Mapped[str] = mapped_column(
        String(64), ForeignKey("billing_rules_version.sha256")
    )
    credits_invoice_id: Mapped[int | None] = mapped_column(
        ForeignKey("billing_invoice.id"), unique=True
    )
    # Since migration 0011 (filled in there for the invoices credited before it):
    #: On an invoice, the credit note that credits it; NULL while it stands.
    credited_by_id: Mapped[int | None] = mapped_column(ForeignKey("billing_invoice.id"))
    reason: Mapped[str] = mapped_column(Text, default="")
    pdf: Mapped[bytes | None] = mapped_column(LargeBinary, deferred=True)
    pdf_sha256: Mapped[str | None] = mapped_column(String(64))
    pdf_error: Mapped[str | None] = mapped_column(Text)
    pdf_attempts: Mapped[int] = mapped_column(default=0)
    # Since migration 0009 (NULL on invoices issued before it, and until rendered):
    #: The EN 16931 CII XML, as embedded in the PDF as factur-x.xml.
    einvoice_xml: Mapped[bytes | None] = mapped_column(LargeBinary, deferred=True)
    einvoice_sha256: Mapped[str | None] = mapped_column(String(64))
    einvoice_status: Mapped[str | None] = mapped_column(String(10))
    #: The broken rules when invalid: [{"source", "rule", "message", "location"}].
    einvoice_failures: Mapped[Any | None] = mapped_column(JSON)
    # Since migration 0012: the PDF as a job of the worker (plugin.services.invoice_pdfs).
    #: The claim of the worker rendering it now, and how long it may hold it.
    pdf_claim_token: Mapped[str | None] = mapped_column(String(32))
    pdf_claimed_until: Mapped[datetime | None]
    #: After a failed render: not before this instant (``None``: as soon as possible).
    pdf_next_attempt_at: Mapped[datetime | None]

    workspace: Mapped[Workspace] = relationship()
    credits: Mapped[Invoice | None] = relationship(
        remote_side=[id], foreign_keys=[credits_invoice_id]
    )


MAIL_KINDS = ("invoice", "mailbox_notice")
MAIL_STATUSES = ("queued", "sending", "sent", "failed")
#: A mail in these states is still on its way: it may not be resent yet.
PENDING_STATUSES = ("queued", "sending")
#: The rows of the dashboard's "invoice mail failed" counter (a partial index).
MAIL_FAILED = "status = 'failed'"


class OutboxMail(Base):
    """One delivery of one e-mail: the transactional outbox (plugin.services.outbox,
    delivered by plugin.services.mail_delivery).

    A row is written in the transaction that makes the mail necessary (the
    month close, a mailbox change, a resend), so a mail exists exactly when
    its cause was committed.  ``recipient`` is fixed then: a later mailbox
    change never redirects it.  ``message_key`` is unique and becomes the
    Message-ID, so every retry of a delivery carries the same one.
    ``claim_token`` and ``claimed_until`` are the lease of the worker that is
    sending it (status ``sending``).
    """

    __tablename__ = "billing_outbox_mail"
    __table_args__ = (
        CheckConstraint(f"kind IN {MAIL_KINDS!r}", name="kind_valid"),
        CheckConstraint(f"status IN {MAIL_STATUSES!r}", name="status_valid"),
        CheckConstraint(
            "(kind = 'invoice') = (invoice_id IS NOT NULL)", name="invoice_mail_refers"
        ),
        CheckConstraint("recipient IS NOT NULL OR status = 'failed'", name="recipient_known"),
        CheckConstraint(
            "(status = 'sending') = (claimed_until IS NOT NULL)", name="sending_has_lease"
        ),
        index_where(
            "ix_billing_outbox_mail_due", f"status IN {PENDING_STATUSES!r}", "next_attempt_at"
        ),
        index_where("ix_billing_outbox_mail_failed", MAIL_FAILED, "kind", "invoice_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(20))
    workspace_id: Mapped[int] = mapped_column(ForeignKey("billing_workspace.id"))
    invoice_id: Mapped[int | None] = mapped_column(ForeignKey("billing_invoice.id"), index=True)
    recipient: Mapped[str | None] = mapped_column(String(254))
    message_key: Mapped[str] = mapped_column(String(120), unique=True)
    data: Mapped[Any] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(10), default="queued")
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime]
    claim_token: Mapped[str | None] = mapped_column(String(32))
    claimed_until: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    queued_at: Mapped[datetime]
    queued_by: Mapped[str] = mapped_column(String(254))
    sent_at: Mapped[datetime | None]

    workspace: Mapped[Workspace] = relationship()
    invoice: Mapped[Invoice | None] = relationship()


class ClosedPeriod(Base):
    """How far a workspace's history is closed: the end of its last invoiced month.

    Written by the month close in the transaction that issues the invoice
    (:func:`plugin.services.closed.close_periods`).  Nothing may start, end
    or move an interval at or before ``closed_until``: the services refuse
    it with a clear error, and database triggers (migration 0010) refuse it
    for any other writer, raw SQL included.
    """

    __tablename__ = "billing_closed_period"

    workspace_id: Mapped[int] = mapped_column(
        ForeignKey("billing_workspace.id", ondelete="CASCADE"), primary_key=True
    )
    closed_until: Mapped[datetime]
    invoice_id: Mapped[int] = mapped_column(ForeignKey("billing_invoice.id"), index=True)

    invoice: Mapped[Invoice] = relationship()


class InvoiceHolder(Base):
    """A licence holder an invoice billed, stored as the export showed it at issue.

    User licences: one row per (person, team that made them billable), with
    the person's e-mail and name and the team's name as they were.  Team
    licences: one row per billed team with its name and member count.  The
    export of an invoiced month reads these rows, so it stays the same
    whatever is renamed, archived or purged later.
    """

    __tablename__ = "billing_invoice_holder"
    __table_args__ = (
        CheckConstraint("(email IS NULL) = (members IS NOT NULL)", name="user_or_team"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    invoice_id: Mapped[int] = mapped_column(
        ForeignKey("billing_invoice.id", ondelete="CASCADE"), index=True
    )
    #: The person's and the team's ids at issue: plain values, not foreign keys.  The
    #: rows are a snapshot, and a month close writes 344,000 of them at the benchmarks'
    #: scale, where a foreign-key check per row and column cost seconds.
    person_id: Mapped[int | None]
    email: Mapped[str | None] = mapped_column(String(254))
    name: Mapped[str | None] = mapped_column(String(200))
    team_id: Mapped[int | None]
    team_name: Mapped[str] = mapped_column(String(200))
    members: Mapped[int | None]


class WorkerHeartbeat(Base):
    """A process that works the queue (``flask billing worker``, or a cron run), last seen when.

    Each worker writes its row when it starts and again every few seconds;
    ``render-pending`` and ``send-invoices`` keep one row per machine and
    command.  The plugin's pages warn when work is waiting and no row is
    fresh (plugin.services.workers).
    """

    __tablename__ = "billing_worker_heartbeat"
    __table_args__ = (
        CheckConstraint("kind IN ('worker', 'cron')", name="kind_valid"),
        Index("ix_billing_worker_heartbeat_seen_at", "seen_at"),
    )

    #: ``HOST:PID:RANDOM`` for a worker, ``cron:HOST:COMMAND`` for a cron command.
    id: Mapped[str] = mapped_column(String(300), primary_key=True)
    kind: Mapped[str] = mapped_column(String(10))
    hostname: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int]
    started_at: Mapped[datetime]
    seen_at: Mapped[datetime]
    #: Set when the worker stopped cleanly (SIGTERM, SIGINT, or its queue ran dry).
    stopped_at: Mapped[datetime | None]
    jobs_done: Mapped[int] = mapped_column(default=0)


#: A close job's states: waiting for a worker, in a worker's hands, over.
CLOSE_JOB_STATUSES = ("queued", "running", "done", "failed")
#: The states of a close job still to finish: at most one per month.
ACTIVE_CLOSE_JOB = "status IN ('queued', 'running')"


class CloseJob(Base):
    """A month close asked for in the back-office, done by a worker.

    The close page queues one; a worker claims it like the other jobs
    (``claim_token``, ``claimed_until``: :mod:`plugin.services.job_queue`)
    and runs :func:`plugin.services.invoicing.close_month`, whose invoices
    commit together with the job's outcome.  At most one job per month is
    queued or running (a partial unique index), so a second click or a
    second browser finds the first one's job instead of queueing another.
    """

    __tablename__ = "billing_close_job"
    __table_args__ = (
        CheckConstraint(f"status IN {CLOSE_JOB_STATUSES!r}", name="status_valid"),
        unique_where("uq_billing_close_job_period_active", ACTIVE_CLOSE_JOB, "period"),
        Index("ix_billing_close_job_period", "period"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    #: ``YYYY-MM``.
    period: Mapped[str] = mapped_column(String(7))
    status: Mapped[str] = mapped_column(String(10), default="queued")
    requested_by: Mapped[str] = mapped_column(String(200))
    requested_at: Mapped[datetime]
    #: How many invoices the preview showed when the close was asked for.
    planned: Mapped[int] = mapped_column(default=0)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    claim_token: Mapped[str | None] = mapped_column(String(32))
    claimed_until: Mapped[datetime | None]
    attempts: Mapped[int] = mapped_column(default=0)
    #: The close's summary once done (numbers issued, held workspaces, totals).
    summary: Mapped[Any | None] = mapped_column(JSON)
    error: Mapped[str | None] = mapped_column(Text)
