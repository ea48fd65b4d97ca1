"""Benchmarks: one module per area, each printing its figures (see benchmarks/README.md)."""
