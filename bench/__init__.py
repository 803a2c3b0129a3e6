"""Benchmarks: `make bench`. Each prints what it measured, including request counts."""
