"""Pricing-rules contents on record: what priced an invoice stays readable forever."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..models import RulesVersion
from ..rules import PricingRules
from ..types import utcnow
from .common import DIALECT_INSERT as _INSERT


def record_rules_version(session: Session, rules: PricingRules) -> int:
    """Store ``rules``' exact content once (by sha256) and return its row id.

    ``INSERT … ON CONFLICT DO NOTHING`` makes concurrent month closes that use
    the same rules agree on one row instead of failing on the unique key.
    """
    insert = _INSERT[session.get_bind().dialect.name]
    session.execute(
        insert(RulesVersion)
        .values(sha256=rules.sha256, content=rules.content, first_used_at=utcnow())
        .on_conflict_do_nothing(index_elements=["sha256"])
    )
    query = select(RulesVersion.id).where(RulesVersion.sha256 == rules.sha256)
    return session.execute(query).scalar_one()


def rules_version_content(session: Session, sha256: str) -> str | None:
    return session.scalar(select(RulesVersion.content).where(RulesVersion.sha256 == sha256))
