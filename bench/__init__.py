"""Tenantry's benchmark and load-test harness (`tenantry bench`; see bench/README.md)."""
