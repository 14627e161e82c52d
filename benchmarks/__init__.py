"""Benchmark and evaluation scripts: they print figures, they assert nothing."""
