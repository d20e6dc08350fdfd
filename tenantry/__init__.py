"""Tenantry: a multi-tenant business backend."""

__version__ = "0.1.0"
