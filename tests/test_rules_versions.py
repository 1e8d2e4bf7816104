"""Rules contents on record: an invoice can always show which rules priced it."""

from __future__ import annotations

from sqlalchemy import func, select

from plugin.models import RulesVersion
from plugin.rules import load_rules
from plugin.services.rules_versions import record_rules_version, rules_version_content
from tests.conftest import RULES_PATH


def test_each_content_is_stored_once_verbatim(app):
    session = app.extensions["sqlalchemy"].session
    rules = app.extensions["billing"].rules()
    first = record_rules_version(session, rules)
    again = record_rules_version(session, rules)
    session.commit()
    assert first == again
    assert rules_version_content(session, rules.sha256) == RULES_PATH.read_text(encoding="utf-8")
    changed = load_rules(rules.content.replace("tax_rate: 0.19", "tax_rate: 0.07"))
    other = record_rules_version(session, changed)
    session.commit()
    assert other != first
    assert session.scalar(select(func.count()).select_from(RulesVersion)) == 2
    assert "tax_rate: 0.07" in rules_version_content(session, changed.sha256)
