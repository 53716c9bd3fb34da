"""Benchmark programs, run as scripts (``python benchmarks/NAME.py``), and the
drivers they share with the tests (``from benchmarks import loadgen``)."""
