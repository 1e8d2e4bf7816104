"""Accounting's pricing-rules editor: check a draft, compare it, preview it, save it.

The editor never lets a draft near billing before it is complete: a draft is
validated by the same loader as the file, its effect is shown as a diff and as
this month's totals per workspace under both rules, and saving replaces the
file atomically, so the running app's :class:`~plugin.rules.RulesStore` sees
either the old file or the new one, never half of one.  Saving is refused
when the file changed since the editor was opened, so two people editing at
once never silently overwrite each other.  No Flask here: any adapter can use it.
"""

from __future__ import annotations

import contextlib
import difflib
import hashlib
import os
import sys
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from ..formatting import percentage
from ..i18n import _
from ..rules import LocatedError, NoPriceError, PricingRules, RulesError, RulesStore, load_rules
from ..rules.loader import MAX_BYTES
from ..rules.model import PriceVersion
from ..rules.pricing import with_tax_rate
from ..types import AnyRow
from . import audit, billing_details
from .licences import count_licences
from .periods import Month
from .quotes import MonthWindow, billable_workspaces, price_counted

if sys.platform != "win32":  # not POSIX: no lock, the sha256 check still guards
    import fcntl

EDIT_ACTION = "edit_rules"
#: Longest diff kept in an audit entry; the full texts are in the file's history.
AUDIT_DIFF_CHARS = 20_000
#: Mode of a rules file that did not exist before it was saved.
NEW_FILE_MODE = 0o644


class RulesChangedMeanwhile(Exception):
    """The file on disk is not the one the editor was opened on: saving would lose a change."""

    def __init__(self, path: Path, expected: str, found: str) -> None:
        self.path, self.expected, self.found = path, expected, found
        found_text = (
            _("sha256 %(sha256)s", sha256=found[:12]) if found else _("the file is gone")
        )
        super().__init__(
            _(
                "%(name)s changed meanwhile (opened as sha256 %(expected)s, now %(found)s): "
                "somebody else saved it after you opened the editor. Nothing was saved; open the "
                "editor again and redo your change on the new file.",
                name=path.name,
                expected=expected[:12] or _("none"),
                found=found_text,
            )
        )


@dataclass(frozen=True)
class OnDisk:
    """The rules file as it is on disk now: what the editor starts from."""

    text: str
    sha256: str
    error: str | None = None


@dataclass(frozen=True)
class Priced:
    """One workspace's current month so far under one set of rules (or why it cannot be).

    The gross is taxed as the close would tax the workspace's invoice: the VAT
    category and rate decided from its billing details under these rules.
    """

    month: Month
    variant: str | None
    quantity: int | None
    currency: str
    net: Decimal | None = None
    gross: Decimal | None = None
    error: str | None = None
    vat_category: str | None = None
    tax_rate: Decimal | None = None
    #: What the billing details lack: the close holds the workspace until they are complete.
    held: tuple[str, ...] = ()

    @property
    def vat(self) -> str:
        """``S 19 %``, ``AE 0 %``: the VAT category and rate applied to the gross."""
        if self.vat_category is None or self.tax_rate is None:
            return ""
        return f"{self.vat_category} {percentage(self.tax_rate)}"


@dataclass(frozen=True)
class PreviewRow:
    """One workspace's totals under the rules in force and under the draft, side by side."""

    workspace_key: str
    workspace_name: str
    current: Priced
    draft: Priced

    @property
    def changed(self) -> bool:
        """Whether the draft bills this workspace differently (the month aside)."""
        return _outcome(self.current) != _outcome(self.draft)

    @property
    def net_difference(self) -> Decimal | None:
        """Draft net minus current net, when both exist in the same currency."""
        if self.current.net is None or self.draft.net is None:
            return None
        if self.current.currency != self.draft.currency:
            return None
        return self.draft.net - self.current.net


def _outcome(priced: Priced) -> tuple[Any, ...]:
    return (
        priced.variant,
        priced.quantity,
        priced.currency,
        priced.net,
        priced.gross,
        priced.error,
        priced.vat_category,
        priced.tax_rate,
    )


def normalise_newlines(text: str) -> str:
    """Browsers send a textarea with CR LF line ends; the file keeps plain LF."""
    return text.replace("\r\n", "\n").replace("\r", "\n")


def check_draft(text: str, *, max_bytes: int = MAX_BYTES, source: str = "draft") -> PricingRules:
    """Validate a draft completely, as the running app would validate the saved file.

    Raises :class:`RulesError` with every located problem.  Line ends are
    normalised first, so the sha256 of the result is that of the file as it
    would be saved.
    """
    return load_rules(normalise_newlines(text), source=source, max_bytes=max_bytes)


def rules_diff(
    current_text: str,
    draft_text: str,
    names: tuple[str, str] = ("rules in force", "draft"),
) -> list[str]:
    """Unified diff from the rules in force to the draft, one list item per line.

    Line ends do not count as a difference (the saved file uses LF anyway).
    ``names`` head the two sides: English in the audit log, which stores the
    diff; the check page passes them in the reader's language.
    """
    return list(
        difflib.unified_diff(
            current_text.splitlines(),
            normalise_newlines(draft_text).splitlines(),
            fromfile=names[0],
            tofile=names[1],
            lineterm="",
        )
    )


def read_on_disk(path: str | os.PathLike[str], *, missing_text: str = "") -> OnDisk:
    """The file's text and sha256 now, even when it is invalid (the editor is how to fix it).

    A missing file reads as ``missing_text`` (say, the rules in force) with an
    empty sha256, which is what :func:`save_rules` expects in order to create
    it again.  A file that exists but cannot be read carries ``error`` instead.
    """
    try:
        raw = _read_if_present(Path(path))
    except OSError as exc:
        reason = exc.strerror or exc
        return OnDisk("", "", error=_("cannot read %(path)s: %(reason)s", path=path, reason=reason))
    if raw is None:
        return OnDisk(missing_text, "")
    return OnDisk(raw.decode("utf-8", "replace"), hashlib.sha256(raw).hexdigest())


def rejected_errors(store: RulesStore) -> list[LocatedError]:
    """The errors of the file the store rejected, in the reader's language.

    The store keeps them in English (for every request, and the log); while
    the file on disk is still the one rejected, it is checked again here.
    """
    problem = store.last_error
    if problem is None:
        return []
    try:
        raw = _read_if_present(store.path)
    except OSError:
        raw = None
    if raw is not None and hashlib.sha256(raw).hexdigest() == problem.sha256:
        try:
            load_rules(raw, source=store.path.name, max_bytes=store.max_bytes)
        except RulesError as exc:
            return list(exc.errors)
    return list(problem.errors)


def _read_if_present(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None


def _sha256_now(path: Path) -> str:
    """The file's sha256, empty when it is missing; any other read error propagates."""
    raw = _read_if_present(path)
    return "" if raw is None else hashlib.sha256(raw).hexdigest()


def preview_totals(
    session: Session,
    current_rules: PricingRules,
    draft_rules: PricingRules,
    now: datetime,
    month: Month | None = None,
) -> list[PreviewRow]:
    """Every workspace's ``month`` (the current one by default) under the rules in force and
    under the draft.

    A past month is counted whole; the current month and any later one use
    the licences counted so far this month, priced with the prices of
    ``month`` (a what-if for a price change that starts later).  Set-based:
    one query for the workspaces and :func:`count_licences` once per distinct
    month window (once, unless the draft changes the time zone), then pricing
    in Python.  A workspace that cannot be priced shows why instead.
    """
    workspaces = billable_workspaces(session)
    details = billing_details.details_by_workspace(session)
    current = _Pricer(session, current_rules, now, month)
    same_window = draft_rules.timezone == current_rules.timezone
    draft = _Pricer(session, draft_rules, now, month, current.counts if same_window else None)
    return [
        PreviewRow(
            workspace.key,
            workspace.name,
            current.price(workspace, details.get(workspace.id)),
            draft.price(workspace, details.get(workspace.id)),
        )
        for workspace in workspaces
    ]


def counted_month(rules: PricingRules, now: datetime, month: Month) -> Month:
    """The month whose licences a preview of ``month`` counts: itself, or this month so far
    for a month not begun yet."""
    return min(month, Month.of(now, rules.zoneinfo))


def first_changed_month(current: PricingRules, draft: PricingRules, now: datetime) -> Month:
    """The first month, from the current one on, whose prices differ between the two rules.

    The months where a price version starts (standard or a contract's) are
    the only ones where prices can change, so only those are compared.  The
    current month when no price differs from it on (a change of the tax rate
    or the seller shows there at once).
    """
    this_month = Month.of(now, current.zoneinfo)
    starts = {
        Month(version.effective_from.year, version.effective_from.month)
        for rules in (current, draft)
        for version in _all_versions(rules)
    }
    for month in sorted({this_month} | {m for m in starts if m > this_month}):
        if _prices_on(current, month.first_day) != _prices_on(draft, month.first_day):
            return month
    return this_month


def _all_versions(rules: PricingRules) -> Iterator[PriceVersion]:
    for versions in rules.variants.values():
        yield from versions
    for contract in rules.contracts.values():
        yield from contract.prices


def _prices_on(rules: PricingRules, day: date) -> dict[tuple[str, str], tuple[Any, ...] | None]:
    """What every variant and every contract costs on ``day``, without the versions' dates."""

    def terms(version: PriceVersion | None) -> tuple[Any, ...] | None:
        if version is None:
            return None
        return (version.model, version.unit_price, version.tiers, version.minimum_monthly_charge)

    prices = {
        ("", variant): terms(rules.price_version_for("", variant, day))
        for variant in rules.variants
    }
    for key, contract in rules.contracts.items():
        prices[(key, contract.variant)] = terms(rules.price_version_for(key, contract.variant, day))
    return prices


class _Pricer:
    """Prices workspaces' ``month`` under one set of rules, from the licences of
    :func:`counted_month` (so far, for the current month)."""

    def __init__(
        self,
        session: Session,
        rules: PricingRules,
        now: datetime,
        month: Month | None = None,
        counts: tuple[dict[int, int], dict[int, int]] | None = None,
    ) -> None:
        self.rules = rules
        self.month = month or Month.of(now, rules.zoneinfo)
        self.window = MonthWindow.at(counted_month(rules, now, self.month), rules, now)
        if counts is None:
            counts = count_licences(session, self.window.start, self.window.end)
        self.counts = counts

    def price(self, workspace: AnyRow, details: Mapping[str, Any] | None) -> Priced:
        rules, month = self.rules, self.month
        try:
            priced = price_counted(rules, workspace, month, self.counts)
        except (NoPriceError, ValueError) as exc:
            return Priced(month, None, None, rules.currency, error=str(exc))
        vat = billing_details.customer_vat(rules, details, workspace.invoice_mailbox)
        totals = with_tax_rate(priced.totals, vat.treatment.rate, rules.currency_exponent)
        return Priced(
            month,
            priced.variant,
            priced.quantity,
            rules.currency,
            totals.net,
            totals.gross,
            vat_category=vat.treatment.category,
            tax_rate=vat.treatment.rate,
            held=vat.missing,
        )


def save_rules(
    path: str | os.PathLike[str],
    text: str,
    *,
    expected_sha256: str,
    max_bytes: int = MAX_BYTES,
) -> PricingRules:
    """Validate ``text`` again and atomically replace the rules file with it.

    ``expected_sha256`` is the sha256 of the file when the editor was opened
    (:func:`read_on_disk`); when the file differs now, nothing is written and
    :class:`RulesChangedMeanwhile` is raised.  Raises :class:`RulesError` for
    an invalid draft.
    """
    rules = check_draft(text, max_bytes=max_bytes, source=Path(path).name)
    _write_unless_changed(Path(path), rules, expected_sha256)
    return rules


def publish_rules(
    session: Session,
    actor: str,
    path: str | os.PathLike[str],
    text: str,
    *,
    expected_sha256: str,
    in_force: PricingRules,
    max_bytes: int = MAX_BYTES,
) -> PricingRules:
    """:func:`save_rules` plus its audit entry (old and new sha256, the diff).

    The entry joins the session's transaction before the file is written: if
    the write is refused the caller rolls back and nothing is recorded; the
    caller commits after a save.
    """
    rules = check_draft(text, max_bytes=max_bytes, source=Path(path).name)
    before = {"sha256": in_force.sha256}
    if expected_sha256 != in_force.sha256:
        before["file_sha256"] = expected_sha256  # the rejected file that was on disk
    audit.record(
        session,
        actor,
        EDIT_ACTION,
        target=Path(path).name,
        before=before,
        after={"sha256": rules.sha256},
        detail=audit_detail(rules_diff(in_force.content, rules.content)),
    )
    _write_unless_changed(Path(path), rules, expected_sha256)
    return rules


def _write_unless_changed(path: Path, rules: PricingRules, expected_sha256: str) -> None:
    """Compare and replace under an exclusive lock on the directory, so that two
    saves cannot both pass the comparison."""
    target = path.resolve()
    with _directory_lock(target.parent):
        found = _sha256_now(target)
        if found != expected_sha256:
            raise RulesChangedMeanwhile(target, expected_sha256, found)
        _replace_atomically(target, rules.content.encode("utf-8"))


def audit_detail(diff: list[str], limit: int = AUDIT_DIFF_CHARS) -> str:
    """The diff for the audit log, cut at a line end when it is longer than ``limit``."""
    text = "\n".join(diff) or "(no change)"
    if len(text) <= limit:
        return text
    kept = text[:limit].rsplit("\n", 1)[0]
    dropped = len(diff) - kept.count("\n") - 1
    return f"{kept}\n… ({dropped} more diff line(s) not kept)"


@contextlib.contextmanager
def _directory_lock(directory: Path) -> Iterator[None]:
    """An exclusive advisory lock that every save of a file in ``directory`` takes."""
    if sys.platform == "win32":  # pragma: no cover
        yield
        return
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        yield
    finally:
        os.close(descriptor)


def _replace_atomically(target: Path, data: bytes) -> None:
    """Temp file in the same directory, fsync, keep the mode, ``os.replace``, fsync the dir."""
    try:
        mode = target.stat().st_mode & 0o7777
    except FileNotFoundError:
        mode = NEW_FILE_MODE
    descriptor, temp_name = tempfile.mkstemp(
        dir=target.parent, prefix=f".{target.name}.", suffix=".tmp"
    )
    try:
        with os.fdopen(descriptor, "wb") as temp:
            temp.write(data)
            temp.flush()
            os.fsync(temp.fileno())
        os.chmod(temp_name, mode)
        os.replace(temp_name, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp_name)
        raise
    _fsync_directory(target.parent)


def _fsync_directory(directory: Path) -> None:
    """Make the rename itself durable (POSIX); harmless where directories cannot be synced."""
    try:
        descriptor = os.open(directory, os.O_RDONLY)
    except OSError:  # pragma: no cover
        return
    try:
        os.fsync(descriptor)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(descriptor)
