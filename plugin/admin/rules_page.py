"""The pricing-rules page: the file in force, its validation state, and accounting's editor.

Everyone with ``view_rules`` sees the rules billing uses and, when the last
reload was rejected, every error of the file on disk.  ``edit_rules``
holders also get the editor: a draft is checked (located errors, or the diff
and this month's totals under both rules) before it can be saved, and the
save is atomic and refused when the file changed since the editor was opened.
The decisions are in :mod:`plugin.services.rules_editor`; this module parses
the form and renders.
"""

from __future__ import annotations

from typing import Any

from flask import flash, redirect, request, url_for
from flask_admin import BaseView, expose

from ..extension import billing
from ..i18n import _
from ..rules import LocatedError, PricingRules, RulesError
from ..services.periods import Month
from ..services.rules_editor import (
    RulesChangedMeanwhile,
    check_draft,
    counted_month,
    first_changed_month,
    preview_totals,
    publish_rules,
    read_on_disk,
    rejected_errors,
    rules_diff,
)
from ..types import utcnow
from .access import action_allowed
from .base import CsrfForm, PermissionMixin, refuse_stale_form
from .changes import diff_block
from .price_tables import model_text, price_tables

#: Percent-encoding can triple a text's size in a form body; the rest is the token.
FORM_OVERHEAD_FACTOR = 3
FORM_OVERHEAD_BYTES = 64 * 1024


class RulesView(PermissionMixin, BaseView):
    permission = "view_rules"

    @expose("/")
    def index(self) -> Any:
        return self.render("billing/admin/rules.html", **page_context())

    @expose("/check", methods=["POST"])
    def check(self) -> Any:
        draft, expected = self._editor_form()
        context = review(draft, expected, month=request.form.get("month", ""))
        page = self.render("billing/admin/rules_check.html", **context)
        return (page, 422) if context.get("month_error") else page

    @expose("/save", methods=["POST"])
    def save(self) -> Any:
        draft, expected = self._editor_form()
        try:
            rules = publish(draft, expected)
        except RulesError as exc:
            context = review(draft, expected, errors=exc.errors)
            return self.render("billing/admin/rules_check.html", **context), 422
        except RulesChangedMeanwhile as exc:
            context = review(draft, expected, refused=str(exc))
            return self.render("billing/admin/rules_check.html", **context), 409
        except OSError as exc:
            refused = _("The file could not be written: %(reason)s", reason=exc)
            context = review(draft, expected, refused=refused)
            return self.render("billing/admin/rules_check.html", **context), 500
        flash_saved(rules)
        return redirect(url_for(".index"))

    def _editor_form(self) -> tuple[str, str]:
        """The draft and the sha256 the editor was opened on, after permission and CSRF."""
        self.require_action("edit")
        limit_body(billing().rules_store().max_bytes)
        if not CsrfForm().validate_on_submit():
            refuse_stale_form()
        return request.form.get("draft", ""), request.form.get("expected_sha256", "")


def limit_body(max_bytes: int) -> None:
    """Refuse (413) a form body far beyond the largest rules file before reading it.

    A draft over ``max_bytes`` that fits gets the loader's clear "too large"
    error instead.
    """
    limit = max_bytes * FORM_OVERHEAD_FACTOR + FORM_OVERHEAD_BYTES
    request.max_content_length = limit
    request.max_form_memory_size = limit


def page_context() -> dict[str, Any]:
    """The rules in force, the rejected file's errors if any, and the editor's start."""
    ext = billing()
    rules = ext.rules()  # first, so that a changed file is looked at now
    store = ext.rules_store()
    can_edit = action_allowed("rules", "edit")
    return {
        "rules": rules,
        "store": store,
        "problem": store.last_error,
        "problem_errors": rejected_errors(store),
        "can_edit": can_edit,
        "disk": read_on_disk(store.path, missing_text=rules.content) if can_edit else None,
        "form": CsrfForm() if can_edit else None,
        **prices_context(rules),
    }


def prices_context(rules: PricingRules) -> dict[str, Any]:
    """The price tables of ``rules``, the version in force today marked."""
    today = utcnow().astimezone(rules.zoneinfo).date()
    return {"price_tables": price_tables(rules, today), "model_text": model_text}


def review(
    draft: str,
    expected: str,
    *,
    errors: list[LocatedError] | None = None,
    refused: str | None = None,
    month: str = "",
) -> dict[str, Any]:
    """What the check page shows: the draft's errors, or its diff and preview.

    ``month`` (``YYYY-MM``) is the month the preview prices; empty, the first
    month whose prices the draft changes.
    """
    ext = billing()
    in_force = ext.rules()
    store = ext.rules_store()
    context: dict[str, Any] = {
        "draft": draft,
        "expected_sha256": expected,
        "in_force": in_force,
        "path": store.path,
        "form": CsrfForm(),
        "errors": errors or [],
        "refused": refused,
        "draft_rules": None,
        "moved_on": read_on_disk(store.path).sha256 != expected,
    }
    if errors or refused:
        return context
    try:
        draft_rules = check_draft(draft, max_bytes=store.max_bytes, source=store.path.name)
    except RulesError as exc:
        return {**context, "errors": exc.errors}
    return {**context, **_comparison(in_force, draft_rules, month)}


def _comparison(in_force: PricingRules, draft_rules: PricingRules, month: str) -> dict[str, Any]:
    """The diff, the draft's prices and the preview of the month asked for (or the default).

    A month that cannot be read is said next to the month field; the preview
    then shows the default month.
    """
    ext = billing()
    now = utcnow()
    default = first_changed_month(in_force, draft_rules, now)
    shown, month_error = default, None
    if month.strip():
        try:
            shown = Month.parse(month)
        except ValueError as exc:
            month_error = str(exc)
    rows = preview_totals(ext.session, in_force, draft_rules, now, shown)
    return {
        "draft_rules": draft_rules,
        "diff": rules_diff(
            in_force.content, draft_rules.content, (_("rules in force"), _("draft"))
        ),
        "diff_block": diff_block,
        "preview": rows,
        "changed_rows": sum(1 for row in rows if row.changed),
        "preview_month": shown,
        "default_month": default,
        "counted_month": counted_month(in_force, now, shown),
        "this_month": Month.of(now, in_force.zoneinfo),
        "month_error": month_error,
        "month_asked": month,
        **prices_context(draft_rules),
    }


def publish(draft: str, expected: str) -> PricingRules:
    """Save the draft with its audit entry: committed together, or neither."""
    ext = billing()
    store = ext.rules_store()
    try:
        rules = publish_rules(
            ext.session,
            ext.actor(),
            store.path,
            draft,
            expected_sha256=expected,
            in_force=ext.rules(),
            max_bytes=store.max_bytes,
        )
    except BaseException:
        ext.session.rollback()
        raise
    ext.session.commit()
    return rules


def flash_saved(saved: PricingRules) -> None:
    """Say what was saved, and whether the running app already bills with it."""
    in_force = billing().rules()
    name = billing().rules_store().path.name
    if in_force.sha256 == saved.sha256:
        flash(
            _(
                "Saved %(name)s (sha256 %(sha256)s); billing uses the new rules from now on.",
                name=name,
                sha256=saved.sha256[:12],
            ),
            "success",
        )
    else:
        flash(
            _(
                "Saved %(name)s (sha256 %(sha256)s), but billing still uses the rules with "
                "sha256 %(in_force)s: see the state below.",
                name=name,
                sha256=saved.sha256[:12],
                in_force=in_force.sha256[:12],
            ),
            "warning",
        )
