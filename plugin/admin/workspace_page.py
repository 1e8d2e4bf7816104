"""The workspace page: the product's "Settings › General", "Settings › Teams" and
"Workspace members" sections, plus the licence chart, for one workspace."""

from __future__ import annotations

import io
import mimetypes
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import IO, Any

from flask import Response, abort, request, stream_with_context
from sqlalchemy import select
from sqlalchemy.orm import Session

from ..extension import billing
from ..formatting import number
from ..i18n import _
from ..models import Team, Workspace
from ..services.billing_details import details_by_workspace, empty_details, missing
from ..services.counts import current_counts
from ..services.exports import (
    FORMATS,
    LicenceExport,
    csv_chunks,
    default_export_month,
    licence_holders,
    licence_holders_of,
    parse_separator,
    write_exports_zip,
    write_xlsx,
)
from ..services.history import licence_history, recent_months
from ..services.intervals import team_archived_at
from ..services.invoicing import list_invoices
from ..services.mail_status import delivery_status
from ..services.periods import Month
from ..services.purge import PurgePreview, PurgeResult, preview_purge, purge_inactive
from ..services.teams import TeamChange, archive_teams, resolve_teams, unarchive_teams
from ..services.workspace_lookup import UnknownWorkspace, get_workspace
from ..types import utcnow
from .access import action_allowed
from .charts import FINAL, PARTIAL, Chart, Point, bar_chart


def teams_now(session: Session, workspace_id: int, now: datetime) -> Sequence[Any]:
    """The workspace's teams with whether each is archived right now: one query."""
    return session.execute(
        select(
            Team.id,
            Team.key,
            Team.name,
            Team.created_at,
            team_archived_at(now).label("archived"),
        )
        .where(Team.workspace_id == workspace_id)
        .order_by(Team.name)
    ).all()


def load_workspace(key: str) -> Workspace:
    try:
        return get_workspace(billing().session, key)
    except UnknownWorkspace:
        abort(404, description=_("No workspace with the key %(key)r.", key=key))


def page_context(workspace: Workspace) -> dict[str, Any]:
    ext = billing()
    session, rules, now = ext.session, ext.rules(), utcnow()
    history = licence_history(session, rules, workspace, now)
    invoices = list(list_invoices(session, workspace_key=workspace.key))
    return {
        "workspace": workspace,
        "created_on": workspace.created_at.astimezone(rules.zoneinfo).date(),
        "counts": current_counts(session, rules, [workspace], now, ext.counts_cache())[
            workspace.id
        ],
        "invoices": invoices,
        "mail": delivery_status(session, [invoice.number for invoice in invoices]),
        "teams": teams_now(session, workspace.id, now),
        "history": history,
        "chart": licence_chart(history),
        **export_choices(),
        **billing_details_section(workspace),
        # What the page offers, as the host's switches and the user's role allow.
        "can": {
            "archive_teams": action_allowed("workspaces", "archive_team"),
            "purge_members": action_allowed("workspaces", "purge"),
            "export_licences": action_allowed("workspaces", "export"),
            "change_mailbox": action_allowed("workspaces", "mailbox"),
            "download_invoices": action_allowed("invoices", "download"),
            "credit_notes": action_allowed("invoices", "credit"),
        },
    }


def billing_details_section(workspace: Workspace) -> dict[str, Any]:
    """What the workspace page's billing-details section shows."""
    record = details_by_workspace(billing().session, [workspace.id]).get(workspace.id)
    return {
        "billing_details": record or empty_details(),
        "billing_details_missing": missing(record, workspace.invoice_mailbox),
        "can_edit_billing_details": action_allowed("details", "edit"),
    }


def licence_chart(history: list[tuple[Month, int]]) -> Chart:
    """The workspace's licences per month; the current month (the last) so far."""
    last = len(history) - 1
    return bar_chart(
        "licence-chart",
        _("Licences billed per month"),
        [
            Point(
                month.first_day.strftime("%m/%y"),
                count,
                number(count),
                f"{month}: {number(count)}",
                PARTIAL if index == last else FINAL,
                _("so far") if index == last else "",
            )
            for index, (month, count) in enumerate(history)
        ],
    )


def export_choices() -> dict[str, Any]:
    """The export form's choices: months (the last closed one chosen), formats, separators."""
    ext = billing()
    now, rules = utcnow(), ext.rules()
    return {
        "export_months": recent_months(now, rules, 13)[::-1],
        "export_default_month": default_export_month(ext.session, rules, now),
        "formats": FORMATS,
        "separators": ((",", _("comma (,)")), (";", _("semicolon (;), for German spreadsheets"))),
    }


def keys_of(workspace_ids: list[int]) -> list[str]:
    return list(
        billing().session.scalars(select(Workspace.key).where(Workspace.id.in_(workspace_ids)))
    )


def parse_ids(text: str) -> list[int]:
    try:
        return [int(part) for part in text.split(",") if part]
    except ValueError:
        abort(400, description=_("The list of workspaces was altered: ids are numbers."))


@dataclass(frozen=True)
class ExportRequest:
    """What the export form asked for, checked: nothing is read before all of it is valid."""

    month: Month
    fmt: str
    separator: str
    with_members: bool


def _export_request() -> ExportRequest:
    """The form's month, format, CSV separator and member-list choice, or a 400 saying which
    one is wrong."""
    args = request.args
    fmt = args.get("format", "csv")
    try:
        if fmt not in FORMATS:
            raise ValueError(_("unknown format %(format)r", format=fmt))
        return ExportRequest(
            Month.parse(args.get("month", "")),
            fmt,
            parse_separator(args.get("separator", ",")),
            args.get("members", "") in ("1", "yes", "on"),
        )
    except ValueError as exc:
        abort(400, description=str(exc))


def exports_response(workspace_ids: list[int]) -> Response:
    """One workspace: its file; several: a ZIP with a file per workspace."""
    ext = billing()
    asked = _export_request()
    month, fmt = asked.month, asked.fmt
    try:
        exports = licence_holders_of(
            ext.session,
            ext.rules(),
            workspace_ids,
            month,
            utcnow(),
            with_members=asked.with_members,
        )
    except ValueError as exc:
        abort(400, description=str(exc))
    if not exports:
        abort(400, description=_("No workspace selected."))
    if len(exports) == 1:
        return _export_file(exports[0], asked)
    spool = _spool()
    write_exports_zip(exports, fmt, spool, separator=asked.separator)
    return _spooled_download(spool, f"licence-holders-{month}-{fmt}.zip")


def export_response(workspace: Workspace) -> Response:
    """The licence-holder export of the month asked for, streamed (CSV) or as a file (XLSX)."""
    ext = billing()
    asked = _export_request()
    try:
        export = licence_holders(
            ext.session,
            ext.rules(),
            workspace.key,
            asked.month,
            utcnow(),
            with_members=asked.with_members,
        )
    except (ValueError, LookupError) as exc:
        abort(400, description=str(exc))
    return _export_file(export, asked)


def _export_file(export: LicenceExport, asked: ExportRequest) -> Response:
    fmt = asked.fmt
    name = export.filename(fmt)
    if fmt == "csv":
        return Response(
            stream_with_context(csv_chunks(export, asked.separator)),
            mimetype="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{name}"'},
        )
    spool = _spool()
    write_xlsx(export, spool)
    return _spooled_download(spool, name)


def _spool() -> IO[bytes]:
    """A file in memory up to 8 MiB, on disk beyond; :func:`_spooled_download` closes it."""
    return tempfile.SpooledTemporaryFile(max_size=8 * 1024 * 1024)


def _spooled_download(spool: IO[bytes], name: str) -> Response:
    """The written ``spool`` as the attachment ``name``, closed as soon as it is sent.

    ``send_file`` would close it only when the server closes the response (a
    response that is read but never closed left it open); this body closes it
    after its last chunk, or when the response is closed before that.
    """
    size = spool.seek(0, io.SEEK_END)
    spool.seek(0)
    response = Response(
        _chunks_then_close(spool),
        mimetype=mimetypes.guess_type(name)[0] or "application/octet-stream",
    )
    response.headers.set("Content-Disposition", "attachment", filename=name)
    response.content_length = size
    response.cache_control.no_cache = True
    response.call_on_close(spool.close)
    return response


def _chunks_then_close(spool: IO[bytes]) -> Iterator[bytes]:
    with spool:
        while chunk := spool.read(64 * 1024):
            yield chunk


def change_team(key: str, team_key: str, *, archive: bool) -> TeamChange:
    """Archive or unarchive one team now, through the service the CLI uses too."""
    ext = billing()
    session = ext.session
    try:
        team_id = resolve_teams(session, [(key, team_key)])[(key, team_key)]
        change = (archive_teams if archive else unarchive_teams)(
            session, [team_id], now=utcnow(), actor=ext.actor()
        )
    except (LookupError, ValueError) as exc:
        session.rollback()
        abort(400, description=str(exc))
    session.commit()
    return change


def purge_preview(workspace: Workspace) -> PurgePreview:
    return preview_purge(billing().session, workspace.id, utcnow())


def purge(workspace: Workspace, person_ids: list[str]) -> PurgeResult:
    """Remove the members the preview showed who are still inactive now."""
    ext = billing()
    try:
        expected = {int(person_id) for person_id in person_ids}
    except ValueError:
        abort(400, description=_("The form was altered: person ids are numbers."))
    result = purge_inactive(
        ext.session, workspace.id, now=utcnow(), actor=ext.actor(), expected=expected
    )
    ext.session.commit()
    return result
