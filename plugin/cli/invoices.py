"""Commands of `flask billing` (invoices)."""

from .common import billing_cli  # noqa: F401
