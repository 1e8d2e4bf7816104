"""People: everyone who has or had access to a workspace, and each person's page."""

from __future__ import annotations

from typing import Any

from flask import abort, flash, redirect, request, url_for
from flask_admin import expose
from flask_wtf import FlaskForm
from wtforms import StringField
from wtforms.validators import InputRequired

from .. import api
from ..extension import billing
from ..i18n import _, _l
from ..models import Person
from ..services.person_overview import person_overview
from ..types import utcnow
from .base import (
    BillingModelView,
    formatter,
    link,
    local_minute,
    person_link,
    refuse_stale_form,
    workspace_link,
)
from .responses import TEXT, attempt
from .workspace_manage import Operation


class PersonNameForm(FlaskForm):
    name = StringField(_l("Name"), TEXT)


class PersonEmailForm(FlaskForm):
    new_email = StringField(_l("New e-mail address"), [InputRequired(), *TEXT])


#: action -> (form class, the API call with the person's e-mail, the form and the actor).
CHANGES: dict[str, Operation] = {
    "rename_person": (
        PersonNameForm,
        lambda email, form, actor: api.rename_person(
            email=email, name=form.name.data or "", actor=actor
        ),
    ),
    "change_email": (
        PersonEmailForm,
        lambda email, form, actor: api.change_email(
            email=email, new_email=form.new_email.data, actor=actor
        ),
    ),
}


class PersonView(BillingModelView):
    column_list = ("email", "name")
    column_labels = {"email": _l("E-mail"), "name": _l("Name")}
    column_searchable_list = ("email", "name")
    column_filters = ("email", "name")
    column_formatters = {"email": formatter(lambda m: person_link(m.id, m.email))}
    column_default_sort = "email"

    @expose("/p/<int:person_id>/")
    def person_page(self, person_id: int) -> Any:
        """Their workspaces and teams now and over time, the months billed, the audit entries."""
        return self._person_page(person_id)

    def _person_page(self, person_id: int, forms: dict[str, FlaskForm] | None = None) -> str:
        ext = billing()
        try:
            overview = person_overview(ext.session, person_id, ext.rules().zoneinfo, utcnow())
        except LookupError as exc:
            abort(404, description=str(exc))
        empty = {action: form_class(formdata=None) for action, (form_class, _) in CHANGES.items()}
        empty["rename_person"].name.data = overview.person.name
        return self.render(
            "billing/admin/person.html",
            overview=overview,
            when=local_minute,
            workspace_link=workspace_link,
            link=link,
            forms={**empty, **(forms or {})},
            may={action: self.can(action) for action in CHANGES},
        )

    @expose("/p/<int:person_id>/<action>", methods=["POST"])
    def change_person(self, person_id: int, action: str) -> Any:
        """Rename the person or change their e-mail address, through :mod:`plugin.api`."""
        if action not in CHANGES:
            abort(404)
        self.require_action(action)
        ext = billing()
        person = ext.session.get(Person, person_id)
        if person is None:
            abort(404, description=_("No person with the id %(id)s.", id=person_id))
        email = person.email
        form_class, call = CHANGES[action]
        form = form_class(formdata=request.form)
        valid = form.validate()
        if "csrf_token" in form.errors:
            refuse_stale_form()
        result = (
            attempt(form, lambda: call(email, form, ext.actor()))
            if valid
            else None
        )
        if result is None:
            return self._person_page(person_id, forms={action: form}), 422
        flash(result.message, "success")
        return redirect(url_for(".person_page", person_id=person_id))
