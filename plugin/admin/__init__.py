"""The plugin's Flask-Admin views (adapters: they call the domain services)."""

from .views import build_views

__all__ = ["build_views"]
