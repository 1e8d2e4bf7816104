"""The values an invoice names, validated once for every path that accepts them.

The import file, ``flask billing set-billing-details``, the admin form, the
CSV upload and the seller in ``pricing_rules.yaml`` all call these
functions, so one value is accepted or refused the same way wherever it is
typed.  Each returns the normalised value or raises :class:`InvalidValue`
with a message that says what is wrong and how to write it.  No network:
``python-stdnum`` checks formats and check digits offline.
"""

from __future__ import annotations

import functools
import re

from babel import Locale
from stdnum import bic as stdnum_bic
from stdnum import get_cc_module
from stdnum import iban as stdnum_iban
from stdnum.eu import vat as eu_vat
from stdnum.exceptions import ValidationError as StdnumError
from stdnum.iso7064 import mod_97_10

LANGUAGES = ("de", "en")

#: The EU member states by ISO 3166-1 code (Greece is GR here, EL in its VAT IDs).
EU_COUNTRIES = frozenset({
    "AT", "BE", "BG", "CY", "CZ", "DE", "DK", "EE", "ES", "FI", "FR", "GR", "HR", "HU",
    "IE", "IT", "LT", "LU", "LV", "MT", "NL", "PL", "PT", "RO", "SE", "SI", "SK",
})
#: ISO country code -> the prefix of its VAT IDs, where they differ.
_VAT_PREFIX = {"GR": "EL"}
#: Babel's territories that are not countries with an ISO 3166-1 alpha-2 code.
_NOT_COUNTRIES = frozenset({"EU", "EZ", "UN", "QO", "XA", "XB", "ZZ"})

#: A Leitweg-ID: coarse address (2-12 digits), optional fine address, two check digits.
_LEITWEG = re.compile(r"[0-9]{2,12}(?:-[A-Z0-9]{1,30})?-[0-9]{2}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_SHOWN = 60


class InvalidValue(ValueError):
    """A value that is refused; ``str()`` says why and how to write it."""


def shown(value: object) -> str:
    """``value`` quoted for a message, control characters escaped, long values cut."""
    text = repr(value)
    return text if len(text) <= _SHOWN else text[: _SHOWN - 4] + "…'"


def text_line(value: object, *, max_length: int = 200) -> str:
    """One line of printable text, stripped; refused: line breaks, control characters, empty."""
    if not isinstance(value, str):
        raise InvalidValue("must be text")
    if _CONTROL.search(value):
        raise InvalidValue("must be one line of text (no line breaks or control characters)")
    text = value.strip()
    if not text:
        raise InvalidValue("must not be empty")
    if len(text) > max_length:
        raise InvalidValue(f"must be at most {max_length} characters long, not {len(text)}")
    return text


@functools.cache
def niceness(value: object) -> int:
    """A process niceness for background work: an integer from 0 (normal) to 19 (idle only)."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 19:
        raise InvalidValue(f"must be a niceness from 0 to 19, not {shown(value)}")
    return value


def country_names(language: str) -> dict[str, str]:
    """ISO 3166-1 alpha-2 code -> the country's name in ``language`` (from Babel's CLDR data)."""
    territories = Locale.parse(language).territories
    return {
        code: name
        for code, name in territories.items()
        if len(code) == 2 and code.isalpha() and code not in _NOT_COUNTRIES
    }


def country_code(value: object) -> str:
    """An ISO 3166-1 alpha-2 country code, upper case (``de`` -> ``DE``)."""
    if not isinstance(value, str):
        raise InvalidValue("must be a two-letter ISO 3166-1 country code such as DE")
    code = value.strip().upper()
    if code not in country_names("en"):
        raise InvalidValue(
            f"{shown(value)} is not an ISO 3166-1 country code: use two letters such as "
            "DE, FR or US"
        )
    return code


def language(value: object) -> str:
    """The language of a customer's documents: ``de`` or ``en``."""
    code = value.strip().lower() if isinstance(value, str) else value
    if code not in LANGUAGES:
        raise InvalidValue(f"{shown(value)} is not a document language: use de or en")
    return code


def vat_id(value: object, country: str | None = None) -> str:
    """A VAT identification number, normalised (``fr 40 303 265 045`` -> ``FR40303265045``).

    Checked with python-stdnum for its country's format and check digits.  An
    EU customer's VAT ID must carry the prefix of ``country`` (EL for Greece).
    Outside the EU the number is checked where python-stdnum knows the
    country's format (CH, GB, NO, …), otherwise only for letters and digits.
    """
    if not isinstance(value, str):
        raise InvalidValue("must be a VAT ID such as DE136695976")
    text_line(value, max_length=30)
    compact = re.sub(r"[\s.\-/]", "", value).upper()
    if country is None or country in EU_COUNTRIES:
        try:
            number = eu_vat.validate(compact)
        except StdnumError as exc:
            raise InvalidValue(
                f"{shown(value)} is not a valid EU VAT ID ({exc.message.rstrip('.').lower()}): "
                "write the country prefix and the number, such as FR40303265045"
            ) from None
        prefix = _VAT_PREFIX.get(country or "", country)
        if country is not None and not number.startswith(prefix):
            raise InvalidValue(
                f"{shown(value)} is not a VAT ID of {country}: it must start with {prefix}"
            )
        return number
    module = get_cc_module(country.lower(), "vat")
    if module is not None:
        try:
            module.validate(compact)
        except StdnumError as exc:
            raise InvalidValue(
                f"{shown(value)} is not a valid VAT number of {country} "
                f"({exc.message.rstrip('.').lower()})"
            ) from None
        return compact
    if not re.fullmatch(r"[A-Z0-9]{4,20}", compact):
        raise InvalidValue(f"{shown(value)} is not a VAT number: 4 to 20 letters and digits")
    return compact


def iban(value: object) -> str:
    """An IBAN, normalised without spaces; format and check digits checked."""
    if not isinstance(value, str):
        raise InvalidValue("must be an IBAN such as DE89 3704 0044 0532 0130 00")
    try:
        return stdnum_iban.validate(value)
    except StdnumError as exc:
        raise InvalidValue(
            f"is not a valid IBAN ({exc.message.rstrip('.').lower()}): "
            "two letters, two check digits, then the account"
        ) from None


def bic(value: object) -> str:
    """A BIC (SWIFT code) of 8 or 11 characters, upper case."""
    if not isinstance(value, str):
        raise InvalidValue("must be a BIC such as COBADEFFXXX")
    try:
        return stdnum_bic.validate(value)
    except StdnumError:
        raise InvalidValue(
            f"{shown(value)} is not a BIC: 8 or 11 letters and digits such as COBADEFFXXX"
        ) from None


def looks_like_leitweg_id(value: str) -> bool:
    """Whether ``value`` has the shape of a Leitweg-ID (its check digits aside)."""
    return _LEITWEG.fullmatch(value.strip().upper()) is not None


def is_leitweg_id(value: str | None) -> bool:
    """Whether ``value`` is a Leitweg-ID with matching check digits (ISO 7064 mod 97-10)."""
    if not value or not looks_like_leitweg_id(value):
        return False
    return mod_97_10.is_valid(value.strip().upper().replace("-", ""))


def buyer_reference(value: object) -> str:
    """A buyer reference (BT-10); one that looks like a Leitweg-ID must have valid check digits."""
    reference = text_line(value, max_length=100)
    if looks_like_leitweg_id(reference) and not is_leitweg_id(reference):
        raise InvalidValue(
            f"{shown(reference)} looks like a Leitweg-ID but its check digits do not match: "
            "copy it exactly as the public-sector customer gave it"
        )
    return reference.upper() if looks_like_leitweg_id(reference) else reference
