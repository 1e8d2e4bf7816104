"""Reading ``pricing_rules.yaml`` into :class:`PricingRules`, and keeping it fresh.

:func:`load_rules` is all-or-nothing: it returns valid rules or raises
:class:`RulesError` with every problem, located.  :class:`RulesStore` is what a
running app holds: it picks up a changed file without a restart, but a broken
edit never replaces the rules in force (accounting may save a half-finished
file at any time); the errors are logged and kept for the admin pages.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import MappingProxyType
from typing import Any

from marshmallow import ValidationError

from .. import validators
from ..documents import (
    DocumentError,
    LocatedError,
    format_path,
    load_document,
    located_errors,
    read_limited,
    schema_load,
)
from ..i18n import untranslated
from .currencies import MINOR_UNITS
from .model import Contract, PriceVersion, PricingRules, Seller, Tier, VatRules
from .schema import RulesSchema

logger = logging.getLogger("plugin.rules")

MAX_BYTES = 1_000_000


class RulesError(DocumentError):
    """The rules file is not valid; ``errors`` lists every problem with its line and path."""


class RulesUnavailable(RulesError):
    """No valid rules were ever loaded from ``path``: nothing can be priced until it is fixed.

    Everything that does not price (sending mail that is already issued,
    ``rules check``) goes on without rules.
    """

    def __init__(self, path: Path, errors: list[LocatedError]) -> None:
        super().__init__(errors)
        self.path = path


def load_rules(
    text: str | bytes, *, source: str = "pricing_rules.yaml", max_bytes: int = MAX_BYTES
) -> PricingRules:
    """Validate rules text completely and build the immutable rules from it."""
    raw = text if isinstance(text, bytes) else text.encode("utf-8", "surrogatepass")
    known = _VALID.get(raw)
    if known is not None and len(raw) <= max_bytes:
        return known
    try:
        document = load_document(raw, source=source, max_bytes=max_bytes)
    except DocumentError as exc:
        raise RulesError(exc.errors) from exc
    try:
        data = schema_load(RulesSchema(), document)
    except ValidationError as exc:
        raise RulesError(located_errors(exc.messages, document)) from exc
    rules = _build(data, content=raw.decode("utf-8"), sha256=hashlib.sha256(raw).hexdigest())
    if len(_VALID) >= _VALID_KEPT:
        _VALID.clear()  # each step atomic: a thread racing here only parses once more
    _VALID[raw] = rules
    return rules


#: The rules of the last few valid texts, by their bytes.  The same text always gives the
#: same (immutable) rules, so every app a process creates from an unchanged file (an app
#: factory per test, per worker thread) shares one parse instead of validating the file
#: again (30 ms).  Only valid texts are kept: a refusal is worded in the reader's language.
_VALID: dict[bytes, PricingRules] = {}
_VALID_KEPT = 4


def load_rules_file(path: str | os.PathLike[str], *, max_bytes: int = MAX_BYTES) -> PricingRules:
    """:func:`load_rules` on a file; an unreadable file is a :class:`RulesError` too."""
    path = Path(path)
    return load_rules(_read(path, max_bytes), source=path.name, max_bytes=max_bytes)


def _read(path: Path, max_bytes: int) -> bytes:
    try:
        return read_limited(path, max_bytes=max_bytes)
    except DocumentError as exc:
        raise RulesError(exc.errors) from exc


def _build(data: dict[str, Any], *, content: str, sha256: str) -> PricingRules:
    variants = data["variants"]
    return PricingRules(
        currency=data["currency"],
        currency_exponent=MINOR_UNITS[data["currency"]],
        tax_rate=data["tax_rate"],
        timezone=data["timezone"],
        invoice_number_format=data["invoice_number_format"],
        seller=_seller(data["seller"]),
        cutover_date=data["cutover_date"],
        variants=MappingProxyType({
            name: _versions(variants[name]["prices"], ("variants", name, "prices"))
            for name in ("team_licences", "user_licences")
        }),
        contracts=MappingProxyType({
            key: Contract(
                workspace_key=key,
                variant=contract["variant"],
                prices=_versions(contract["prices"] or (), ("contracts", key, "prices")),
                email_invoices=contract["email_invoices"],
                note=contract["note"],
            )
            for key, contract in (data["contracts"] or {}).items()
        }),
        sha256=sha256,
        content=content,
        vat=VatRules(**(data["vat"] or {})),
    )


def _seller(seller: dict[str, Any]) -> Seller:
    """The seller with its identifiers normalised (the schema has checked them)."""
    address, register = seller["address"], seller["register"]
    contact, payment = seller["contact"], seller["payment"]
    country = validators.country_code(address["country"])
    return Seller(
        name=seller["name"],
        address_lines=tuple(address["street"]),
        postcode=address["postcode"],
        city=address["city"],
        country=country,
        vat_id=seller["vat_id"] and validators.vat_id(seller["vat_id"], country),
        tax_number=seller["tax_number"],
        register_court=register["court"],
        register_number=register["number"],
        managing_directors=tuple(register["managing_directors"]),
        email=seller["email"],
        contact_name=contact["name"],
        contact_phone=contact["phone"],
        contact_email=contact["email"],
        payment_terms_days=payment["terms_days"],
        iban=validators.iban(payment["iban"]),
        bic=payment["bic"] and validators.bic(payment["bic"]),
        bank_name=payment["bank_name"],
    )


def _versions(prices: Any, path: tuple[Any, ...]) -> tuple[PriceVersion, ...]:
    return tuple(
        PriceVersion(
            effective_from=version["effective_from"],
            model=version["model"],
            unit_price=version["unit_price"],
            tiers=tuple(Tier(tier["up_to"], tier["unit_price"]) for tier in version["tiers"] or ()),
            minimum_monthly_charge=version["minimum_monthly_charge"],
            origin=format_path((*path, index)),
        )
        for index, version in enumerate(prices)
    )


@dataclass(frozen=True)
class RulesProblem:
    """Why the file on disk is not the rules in force."""

    errors: tuple[LocatedError, ...]
    at: datetime
    sha256: str | None = None


class RulesStore:
    """The last valid rules of one file, reloaded when the file changes.

    ``current()`` costs one ``stat`` when nothing changed; the file is read and
    hashed only when its modification time, size or inode differ, and parsed
    only when its content differs from the rules in force.  A file that changes
    while it is read is looked at again on the next call, not half-read.  A file whose
    content is invalid (or which cannot be read) leaves the rules in force and
    sets ``last_error``; a later valid file (or reverting to the valid content)
    clears it.  Thread-safe: one lock around the check and the reload.
    """

    def __init__(self, path: str | os.PathLike[str], *, max_bytes: int = MAX_BYTES) -> None:
        self.path = Path(path)
        self.max_bytes = max_bytes
        self.last_error: RulesProblem | None = None
        self._lock = threading.Lock()
        self._stamp = self._stat_stamp()
        self._rules: PricingRules | None = None
        self.loaded_at = datetime.now(UTC)
        try:
            self._rules = load_rules_file(self.path, max_bytes=max_bytes)
        except RulesError as exc:
            self._refuse(exc.errors, None)

    def current(self) -> PricingRules:
        """The rules in force, after picking up a changed file if it is valid.

        Raises :class:`RulesUnavailable` while no valid content was ever read.
        """
        with self._lock:
            stamp = self._stat_stamp()
            if stamp != self._stamp:
                # The errors are kept for every later request (and logged): in English,
                # whoever's request reloads; pages check the file again in their language.
                with untranslated():
                    self._reload(stamp)
            if self._rules is None:
                errors = list(self.last_error.errors) if self.last_error else []
                raise RulesUnavailable(self.path, errors)
            return self._rules

    def _stat_stamp(self) -> tuple[int, ...] | None:
        try:
            status = self.path.stat()
        except OSError:
            return None
        return (status.st_mtime_ns, status.st_ctime_ns, status.st_size, status.st_ino)

    def _reload(self, stamp: tuple[int, ...] | None) -> None:
        try:
            raw = _read(self.path, self.max_bytes)
        except RulesError as exc:
            self._stamp = stamp
            self._refuse(exc.errors, None)
            return
        if self._stat_stamp() != stamp:
            return  # still being written: look again at the next call
        self._stamp = stamp
        sha256 = hashlib.sha256(raw).hexdigest()
        if self._rules is not None and sha256 == self._rules.sha256:
            self.last_error = None
            return
        if self.last_error is not None and sha256 == self.last_error.sha256:
            return
        try:
            rules = load_rules(raw, source=self.path.name, max_bytes=self.max_bytes)
        except RulesError as exc:
            self._refuse(exc.errors, sha256)
            return
        self._rules = rules
        self.loaded_at = datetime.now(UTC)
        self.last_error = None
        logger.info("pricing rules reloaded from %s (sha256 %s)", self.path, sha256[:12])

    def _refuse(self, errors: list[LocatedError], sha256: str | None) -> None:
        self.last_error = RulesProblem(tuple(errors), datetime.now(UTC), sha256)
        listing = "\n".join(f"  {self.path.name}: {error}" for error in errors)
        if self._rules is None:
            logger.error(
                "%s is invalid; nothing can be priced until it is fixed:\n%s", self.path, listing
            )
            return
        logger.error(
            "%s is invalid; billing keeps the rules loaded at %s (sha256 %s):\n%s",
            self.path,
            self.loaded_at.isoformat(timespec="seconds"),
            self._rules.sha256[:12],
            listing,
        )
