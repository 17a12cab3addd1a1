"""Benchmarks: how fast and how lean, each figure measured beside its floor in the same run."""
