"""What ``pricing_rules.yaml`` may contain: marshmallow schemas and their messages.

The messages are written for accounting, who edit the file by hand: they say
what is wrong and how to write it instead.  Every schema refuses unknown keys
and lists the allowed ones.  The cross-field checks (tiers, version order,
which keys a pricing model needs) run even when other fields of the same
object are wrong, so that one run reports every error.

Values arrive as text from :mod:`plugin.documents`; amounts are parsed from that
text straight into ``Decimal`` and never pass through a float.
"""

from __future__ import annotations

import re
import string
from datetime import date
from decimal import Decimal
from functools import cache, partial
from typing import Any
from zoneinfo import available_timezones

from marshmallow import RAISE, Schema, ValidationError, fields, validate, validates_schema

from .. import validators
from ..documents import CheckedText, checked
from ..i18n import _, _l
from .currencies import MINOR_UNITS
from .model import (
    DEFAULT_NOT_TAXABLE_NOTE,
    DEFAULT_REVERSE_CHARGE_NOTE,
    PRICING_MODELS,
    VARIANTS,
)

MAX_PLACES = 6
MAX_DIGITS = 12
DEFAULT_TIMEZONE = "Europe/Berlin"
DEFAULT_CUTOVER = date(2023, 3, 1)
DEFAULT_INVOICE_NUMBER_FORMAT = "{year}-{seq:05d}"

#: Marshmallow's ``error_messages`` argument.  The messages are lazy strings, translated
#: when a page shows them (marshmallow formats only plain strings: no ``{}`` escapes).
Messages = dict[str, Any]

#: Every field's: what is missing or empty, and a value that is not text where text is asked
#: for (marshmallow's own "Not a valid string." is English only).
_COMMON: Messages = {
    "required": _l("is missing: this key is required"),
    "null": _l("must not be empty"),
    "invalid": _l("must be text (put it in quotes)"),
}
_GROUP = _l("must be a group of 'key: value' lines")
_NUMBER = re.compile(r"[+-]?([0-9]+)(?:\.([0-9]+))?")
_WHOLE = re.compile(r"[+-]?[0-9]+")
_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


class StrictSchema(Schema):
    """Unknown keys are errors, and the message lists the keys allowed there."""

    class Meta:
        unknown = RAISE

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        allowed = ", ".join(
            field.data_key or name for name, field in self.load_fields.items()
        )
        self.error_messages = {
            **self.error_messages,
            "unknown": _l("unknown key; the keys allowed here are: %(keys)s", keys=allowed),
            "type": _GROUP,
        }


# Fields ----------------------------------------------------------------------


class Text(CheckedText):
    """One line of text, :func:`plugin.validators.text_line` (it is printed on invoices)."""

    default_error_messages = _COMMON

    def __init__(self, max_length: int = 200, **kwargs: Any) -> None:
        super().__init__(partial(validators.text_line, max_length=max_length), **kwargs)


class Amount(fields.Decimal):
    """An exact decimal amount or rate, such as ``12.50``: no exponent, no float on the way."""

    trap_hint = "write a plain number such as 12.50"
    default_error_messages = {
        **_COMMON,
        "invalid": _l("must be a number such as 12.50 (digits and a decimal point only)"),
        "comma": _l("must use a decimal point, not a comma: such as 12.50"),
        "places": _l("must have at most %(places)s decimal places", places=MAX_PLACES),
        "too_large": _l(
            "must have at most %(digits)s digits before the decimal point", digits=MAX_DIGITS
        ),
    }

    def _validated(self, value: Any) -> Decimal:
        text = format(value, "f") if isinstance(value, Decimal) else value
        if not isinstance(text, str):
            raise self.make_error("invalid")
        match = _NUMBER.fullmatch(text)
        if match is None:
            comma = _NUMBER.fullmatch(text.replace(",", "."))
            raise self.make_error("comma" if comma else "invalid")
        if match.group(2) and len(match.group(2)) > MAX_PLACES:
            raise self.make_error("places")
        if len(match.group(1).lstrip("0")) > MAX_DIGITS:
            raise self.make_error("too_large")
        return Decimal(text)


class Count(fields.Integer):
    """A whole number written as plain digits."""

    trap_hint = "write a plain whole number such as 10"
    default_error_messages = {**_COMMON, "invalid": _l("must be a whole number such as 10")}

    def _validated(self, value: Any) -> int:
        if isinstance(value, str) and not _WHOLE.fullmatch(value):
            raise self.make_error("invalid")
        return super()._validated(value)


_DATE = _l("must be a date written as YYYY-MM-DD, such as 2023-03-01")


class Day(fields.Date):
    """A calendar date written as YYYY-MM-DD."""

    default_error_messages = {
        **_COMMON,
        "invalid": _DATE,
        "format": _DATE,
    }

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> date:
        if not isinstance(value, str) or not _DAY.fullmatch(value):
            raise self.make_error("invalid")
        return super()._deserialize(value, attr, data, **kwargs)


class Flag(fields.Boolean):
    """``true`` or ``false``, nothing else (no yes/no/on/off)."""

    default_error_messages = {**_COMMON, "invalid": _l("must be true or false")}

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(truthy={"true"}, falsy={"false"}, **kwargs)


class KeyedMapping(fields.Dict):
    """A mapping whose errors are keyed like the document.

    ``fields.Dict`` reports ``{key: {"key": [...], "value": {...}}}``; here a
    bad key is an error of the entry itself and the value's errors sit
    directly under the key, so the paths name what the file shows.
    """

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        try:
            # marshmallow's Dict field is not annotated.
            return super()._deserialize(value, attr, data, **kwargs)  # type: ignore[no-untyped-call]
        except ValidationError as exc:
            if not isinstance(exc.messages, dict):
                raise
            messages: dict[Any, Any] = {}
            for key, problems in exc.messages.items():
                value_errors = problems.get("value", {})
                if isinstance(value_errors, dict):
                    entry = dict(value_errors)
                else:  # a list of messages, or one (a lazy string is no list to unpack)
                    listed = isinstance(value_errors, list | tuple)
                    entry = {"_schema": list(value_errors) if listed else [value_errors]}
                if "key" in problems:
                    entry["_schema"] = [*problems["key"], *entry.get("_schema", [])]
                messages[key] = entry
            raise ValidationError(messages, valid_data=exc.valid_data) from exc


def _list(inner: fields.Field[Any], **kwargs: Any) -> fields.List[Any]:
    kwargs.setdefault("validate", validate.Length(min=1, error=_l("must list at least one entry")))
    return fields.List(
        inner, error_messages={**_COMMON, "invalid": _l("must be a list of '- ' lines")}, **kwargs
    )


def _nested(schema: type[Schema], **kwargs: Any) -> fields.Nested:
    messages: Messages = {**_COMMON, "type": _GROUP}
    return fields.Nested(schema, error_messages=messages, **kwargs)


# Validators ------------------------------------------------------------------

NOT_NEGATIVE = validate.Range(min=0, error=_l("must not be negative"))
TAX_RATE = validate.Range(
    min=0,
    max=1,
    max_inclusive=False,
    error=_l("must be at least 0 and less than 1 (0.19 means 19 %)"),
)
AT_LEAST_ONE = validate.Range(min=1, error=_l("must be at least 1"))


@cache
def _time_zones() -> frozenset[str]:
    return frozenset(available_timezones())


def valid_time_zone(value: str) -> None:
    if value not in _time_zones():
        raise ValidationError(
            _(
                "unknown time zone '%(zone)s': use a name from the IANA time zone database, such "
                "as Europe/Berlin",
                zone=value,
            )
        )


def valid_currency(value: str) -> None:
    if value not in MINOR_UNITS:
        raise ValidationError(
            _(
                "unknown currency '%(currency)s': use an ISO 4217 code such as EUR (known: "
                "%(known)s)",
                currency=value,
                known=", ".join(MINOR_UNITS),
            )
        )


def valid_invoice_number_format(value: str) -> None:
    """It must number invoices per year without gaps: {year} and {seq}, nothing else."""
    problem = ValidationError(
        _(
            "must contain {year} and {seq} and no other {…} fields, such as %(example)s",
            example=DEFAULT_INVOICE_NUMBER_FORMAT,
        )
    )
    try:
        validators.characters(value)
    except validators.InvalidValue as exc:
        raise ValidationError(str(exc)) from None
    try:
        names = {name for _, name, _, _ in string.Formatter().parse(value) if name is not None}
        sample = value.format(year=2024, seq=1)
    except (ValueError, KeyError, IndexError, AttributeError, TypeError) as exc:
        raise problem from exc
    if names != {"year", "seq"}:
        raise problem
    if not sample.isprintable():
        raise ValidationError(
            _(
                "makes invoice numbers such as %(sample)r that hold invisible characters",
                sample=sample,
            )
        )
    if len(value.format(year=9999, seq=999_999)) > 40:
        raise ValidationError(_("makes invoice numbers longer than 40 characters"))
    segments = sample.split("/")
    if "" in segments or {".", ".."} & {segment.strip() for segment in segments}:
        raise ValidationError(
            _(
                "must not start or end with '/', hold '//', or a '.' or '..' between slashes: "
                "invoice numbers are part of their download links"
            )
        )


def first_of_month(value: date) -> None:
    if value.day != 1:
        raise ValidationError(
            _("must be the first day of a month, such as 2026-01-01: prices apply to whole months")
        )


# Schemas ---------------------------------------------------------------------


class TierSchema(StrictSchema):
    up_to = Count(load_default=None, validate=AT_LEAST_ONE)
    unit_price = Amount(required=True, validate=NOT_NEGATIVE)


class PriceVersionSchema(StrictSchema):
    effective_from = Day(required=True, validate=first_of_month)
    model = fields.String(
        required=True,
        validate=validate.OneOf(
            PRICING_MODELS, error=_l("must be one of: flat, graduated, volume")
        ),
        error_messages=_COMMON,
    )
    unit_price = Amount(load_default=None, validate=NOT_NEGATIVE)
    tiers = _list(_nested(TierSchema), load_default=None)
    minimum_monthly_charge = Amount(load_default=None, validate=NOT_NEGATIVE)

    @validates_schema(pass_original=True, skip_on_field_errors=False)
    def _fits_model(self, data: dict[str, Any], original: Any, **kwargs: Any) -> None:
        if not isinstance(original, dict):
            return
        model = data.get("model")
        errors: dict[str, Any] = {}
        given = {key for key, value in original.items() if value is not None}
        if model == "flat":
            if "unit_price" not in given:
                errors["unit_price"] = [_("is missing: a flat price needs a unit_price")]
            if original.get("tiers"):
                errors["tiers"] = [
                    _("a flat price has no tiers: remove them, or use model graduated or volume")
                ]
        elif model in ("graduated", "volume"):
            if "unit_price" in given:
                errors["unit_price"] = [
                    _(
                        "a %(model)s price has no unit_price of its own: the tiers hold the prices",
                        model=model,
                    )
                ]
            if "tiers" not in given:
                errors["tiers"] = [_("is missing: a %(model)s price needs tiers", model=model)]
            elif data.get("tiers") and len(data["tiers"]) == len(original["tiers"]):
                errors.update(_tier_errors(data["tiers"]))
        if errors:
            raise ValidationError(errors)


def _tier_errors(tiers: list[dict[str, Any]]) -> dict[str, Any]:
    """Tiers ascending by ``up_to``; only the last one open-ended (``up_to`` empty)."""
    problems: dict[int, dict[str, list[str]]] = {}
    previous = None
    last = len(tiers) - 1
    for index, tier in enumerate(tiers):
        if "up_to" not in tier:
            continue
        up_to = tier["up_to"]
        if up_to is None and index != last:
            problems[index] = {"up_to": [
                _("only the last tier may be open-ended: give this tier an up_to")
            ]}
        elif up_to is not None and index == last:
            problems[index] = {"up_to": [
                _(
                    "the last tier must be open-ended (up_to: null), so that every quantity has "
                    "a price"
                )
            ]}
        elif up_to is not None and previous is not None and up_to <= previous:
            problems[index] = {"up_to": [
                _(
                    "must be greater than the previous tier's up_to (%(previous)s): tiers go "
                    "upwards",
                    previous=previous,
                )
            ]}
        if up_to is not None:
            previous = up_to
    return {"tiers": problems} if problems else {}


def _version_errors(data: dict[str, Any], original: Any) -> dict[str, Any]:
    """Price versions in strictly increasing ``effective_from`` order."""
    versions = data.get("prices")
    if not versions or not isinstance(original, dict) or len(versions) != len(original["prices"]):
        return {}
    problems: dict[int, dict[str, list[str]]] = {}
    previous = None
    for index, version in enumerate(versions):
        day = version.get("effective_from")
        if day is None:
            continue
        if previous is not None and day <= previous:
            problems[index] = {"effective_from": [
                _(
                    "must be later than the previous version's effective_from (%(previous)s): "
                    "list versions from oldest to newest, one per date",
                    previous=previous,
                )
            ]}
        previous = day
    return {"prices": problems} if problems else {}


class VariantSchema(StrictSchema):
    prices = _list(_nested(PriceVersionSchema), required=True)

    @validates_schema(pass_original=True, skip_on_field_errors=False)
    def _versions_in_order(self, data: dict[str, Any], original: Any, **kwargs: Any) -> None:
        errors = _version_errors(data, original)
        if errors:
            raise ValidationError(errors)


class VariantsSchema(StrictSchema):
    team_licences = _nested(VariantSchema, required=True)
    user_licences = _nested(VariantSchema, required=True)


class ContractSchema(StrictSchema):
    variant = fields.String(
        required=True,
        validate=validate.OneOf(VARIANTS, error=_l("must be team_licences or user_licences")),
        error_messages=_COMMON,
    )
    prices = _list(_nested(PriceVersionSchema), load_default=None)
    email_invoices = Flag(load_default=None)
    note = Text(500, load_default=None)

    @validates_schema(pass_original=True, skip_on_field_errors=False)
    def _versions_in_order(self, data: dict[str, Any], original: Any, **kwargs: Any) -> None:
        errors = _version_errors(data, original)
        if errors:
            raise ValidationError(errors)


_EMAIL = validate.Email(error=_l("must be an e-mail address such as billing@example.com"))


def _valid_email(value: str) -> None:
    """The characters first (:func:`plugin.validators.characters`), then the address."""
    try:
        validators.characters(value)
    except validators.InvalidValue as exc:
        raise ValidationError(str(exc)) from None
    _EMAIL(value)


def _email(**kwargs: Any) -> fields.String:
    """An e-mail address printed on invoices: one message, the first problem found."""
    return fields.String(validate=_valid_email, error_messages=_COMMON, **kwargs)


class AddressSchema(StrictSchema):
    street = _list(Text(), required=True, validate=validate.Length(
        min=1, max=3, error=_l("must list 1 to 3 street lines")
    ))
    postcode = Text(20, required=True)
    city = Text(100, required=True)
    country = fields.String(
        required=True, validate=checked(validators.country_code), error_messages=_COMMON
    )


class RegisterSchema(StrictSchema):
    court = Text(required=True)
    number = Text(50, required=True)
    managing_directors = _list(Text(), required=True)


class ContactSchema(StrictSchema):
    name = Text(required=True)
    phone = Text(40, required=True)
    email = _email(required=True)


class PaymentSchema(StrictSchema):
    terms_days = Count(required=True, validate=validate.Range(
        min=0, max=365, error=_l("must be 0 to 365 days")
    ))
    iban = Text(42, required=True, validate=checked(validators.iban))
    bic = Text(11, load_default=None, validate=checked(validators.bic))
    bank_name = Text(load_default=None)


class SellerSchema(StrictSchema):
    name = Text(required=True)
    address = _nested(AddressSchema, required=True)
    vat_id = Text(30, load_default=None)
    tax_number = Text(30, load_default=None)
    register = _nested(RegisterSchema, required=True)
    contact = _nested(ContactSchema, required=True)
    email = _email(required=True)
    payment = _nested(PaymentSchema, required=True)

    @validates_schema(pass_original=True, skip_on_field_errors=False)
    def _identified(self, data: dict[str, Any], original: Any, **kwargs: Any) -> None:
        """A VAT ID of the seller's own country, or a tax number, or both (§14 (4) UStG)."""
        if not isinstance(original, dict):
            return
        if original.get("vat_id") is None and original.get("tax_number") is None:
            raise ValidationError(
                _(
                    "is missing: give the seller's vat_id (USt-IdNr.) or tax_number "
                    "(Steuernummer)"
                ),
                "vat_id",
            )
        country = (data.get("address") or {}).get("country")
        if data.get("vat_id") and country:
            try:
                validators.vat_id(data["vat_id"], validators.country_code(country))
            except validators.InvalidValue as exc:
                raise ValidationError(str(exc), "vat_id") from None


class VatSchema(StrictSchema):
    reverse_charge_note = Text(300, load_default=DEFAULT_REVERSE_CHARGE_NOTE)
    not_taxable_note = Text(300, load_default=DEFAULT_NOT_TAXABLE_NOTE)


class RulesSchema(StrictSchema):
    """The whole file.  Unlisted keys with defaults: timezone, invoice_number_format,
    vat, cutover_date, contracts."""

    currency = fields.String(required=True, validate=valid_currency, error_messages=_COMMON)
    tax_rate = Amount(required=True, validate=TAX_RATE)
    timezone = fields.String(
        load_default=DEFAULT_TIMEZONE, validate=valid_time_zone, error_messages=_COMMON
    )
    invoice_number_format = fields.String(
        load_default=DEFAULT_INVOICE_NUMBER_FORMAT,
        validate=valid_invoice_number_format,
        error_messages={
            **_COMMON,
            "invalid": _l('must be text in quotes, such as "{year}-{seq:05d}"'),
        },
    )
    seller = _nested(SellerSchema, required=True)
    vat = _nested(VatSchema, load_default=None)
    cutover_date = Day(load_default=DEFAULT_CUTOVER)
    variants = _nested(VariantsSchema, required=True)
    contracts = KeyedMapping(
        keys=fields.String(validate=checked(validators.key)),
        values=_nested(ContractSchema),
        load_default=None,
        error_messages={**_COMMON, "invalid": _l("must be a group of 'workspace-key:' entries")},
    )
