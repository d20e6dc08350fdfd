"""Shared machinery. Nothing in here imports a domain package."""
