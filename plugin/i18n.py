"""The plugin's own strings in the back-office's language (Flask-Babel, domain ``billing``).

The language is the host's: whatever Flask-Babel's locale selector of the
host returns, the same one that translates Flask-Admin's own strings.  A host
without Flask-Babel gets the English strings, unchanged.

Python code marks a string with :func:`gettext` (``_``), :func:`ngettext` or,
where the string is defined before any request (form labels, column names,
menu entries), :func:`lazy_gettext` (``_l``).  Templates call ``_b("…")`` and
``_bn("…", "…", n)``, registered by the extension as Jinja globals.  The
catalogue lives in ``translations/`` (``make translations`` extracts and
compiles it); the wheel holds it compiled (``hatch_build.py``).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from functools import cache
from io import BytesIO
from typing import Any

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import NullTranslations, Translations
from flask import current_app, has_app_context, has_request_context
from flask_babel import Domain, LazyString, get_locale

#: The gettext domain of the plugin's catalogue: ``translations/<lang>/LC_MESSAGES/billing.mo``.
DOMAIN = "billing"
#: Set inside :func:`untranslated`.
_ENGLISH: ContextVar[bool] = ContextVar("billing_untranslated", default=False)


class _Domain(Domain):  # type: ignore[misc]
    """Flask-Babel's domain, its catalogue from :func:`translations` (never a stale ``.mo``)."""

    def get_translations(self) -> NullTranslations:
        locale = get_locale()
        if locale is None or locale.language not in LANGUAGES:
            return NullTranslations()
        return translations(locale.language)


@cache
def _domain() -> Domain:
    return _Domain(domain=DOMAIN)


def babel_active() -> bool:
    """Translate in a request of a host with Flask-Babel.

    Outside a request (the CLI, the worker, views being set up) the host's
    locale selector may need the request it does not have: English then.
    The numbers of a page follow the same rule (:func:`plugin.formatting.page_locale`).
    """
    return (
        not _ENGLISH.get()
        and has_app_context()
        and has_request_context()
        and "babel" in current_app.extensions
    )


@contextmanager
def untranslated() -> Iterator[None]:
    """English inside, even in a request: for text kept beyond the request that builds it.

    The rules store keeps the errors of a rejected file for every later
    request and writes them to the log; they must not be in the language of
    whoever happened to trigger the reload.
    """
    token = _ENGLISH.set(True)
    try:
        yield
    finally:
        _ENGLISH.reset(token)


def gettext(string: str, **variables: Any) -> str:
    """``string`` in the current locale, ``%(name)s`` placeholders filled from ``variables``."""
    if babel_active():
        return str(_domain().gettext(string, **variables))
    return string % variables if variables else string


def ngettext(singular: str, plural: str, num: int, **variables: Any) -> str:
    """The singular or plural form for ``num`` (also available as ``%(num)d``)."""
    if babel_active():
        return str(_domain().ngettext(singular, plural, num, **variables))
    variables.setdefault("num", num)
    return (singular if num == 1 else plural) % variables


def lazy_gettext(string: str, **variables: Any) -> LazyString:
    """A string translated each time it is shown, for labels defined at import or setup time."""
    return LazyString(gettext, string, **variables)


_ = gettext
_l = lazy_gettext

#: The languages the plugin ships a catalogue for (besides English, the source language).
LANGUAGES = ("en", "de")


@cache
def translations(language: str) -> NullTranslations:
    """The plugin's catalogue in ``language`` (``de``, ``en``), wherever the code runs.

    For what goes to a customer in *their* language (mail, documents), also
    outside a request (the CLI, the worker).  English is the source language:
    its msgids are the text.  The compiled ``.mo`` is read when it is at least
    as new as its ``.po``; otherwise (a source checkout before ``pybabel
    compile``, or a ``.po`` edited since) the ``.po`` is compiled in memory, so
    nothing depends on a stale or missing ``.mo``.  Cached per language.
    """
    if language not in LANGUAGES:
        raise ValueError(f"no catalogue for the language {language!r}: use one of {LANGUAGES}")
    if language == "en":
        return NullTranslations()
    # Imported here: resources needs validators, whose messages need this module.
    from .resources import resource_path

    po = resource_path("translations") / language / "LC_MESSAGES" / f"{DOMAIN}.po"
    mo = po.with_suffix(".mo")
    if mo.exists() and (not po.exists() or mo.stat().st_mtime >= po.stat().st_mtime):
        with mo.open("rb") as compiled:
            return Translations(compiled, domain=DOMAIN)
    with po.open("rb") as source:
        catalogue = read_po(source, locale=language)
    buffer = BytesIO()
    write_mo(buffer, catalogue, use_fuzzy=False)
    buffer.seek(0)
    return Translations(buffer, domain=DOMAIN)
