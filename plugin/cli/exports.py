"""Commands of `flask billing` (exports)."""

from .common import billing_cli  # noqa: F401
