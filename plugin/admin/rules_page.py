"""The pricing-rules page: the file in force, its validation state, and accounting's editor."""

from __future__ import annotations

from typing import Any

from flask_admin import BaseView, expose

from .base import PermissionMixin


class RulesView(PermissionMixin, BaseView):
    permission = "view_rules"

    @expose("/")
    def index(self) -> Any:
        return self.render("billing/admin/forbidden.html", permission="edit_rules")
