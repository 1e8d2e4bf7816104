"""The demo host's own model: proof that the plugin coexists with a host's tables."""

from __future__ import annotations

from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class HostBase(DeclarativeBase):
    pass


db = SQLAlchemy(model_class=HostBase)


class SupportTicket(db.Model):
    __tablename__ = "support_ticket"

    id: Mapped[int] = mapped_column(primary_key=True)
    subject: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text, default="")
