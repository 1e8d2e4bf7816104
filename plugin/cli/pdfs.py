"""Commands of `flask billing` (pdfs)."""

from .common import billing_cli  # noqa: F401
