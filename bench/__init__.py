"""Meridian benchmarks: `python -m bench [--quick]`."""
