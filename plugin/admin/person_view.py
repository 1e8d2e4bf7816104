"""People: everyone who has or had access to a workspace, and each person's page."""

from __future__ import annotations

from .base import BillingModelView


class PersonView(BillingModelView):
    column_list = ("email", "name")
    column_searchable_list = ("email", "name")
    column_default_sort = "email"
