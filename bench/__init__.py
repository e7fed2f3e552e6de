"""CNOP benchmarks: `make bench` (or `PYTHONPATH=. .venv/bin/python bench/run.py [--quick]`).

Every workload of the performance targets, one table; see docs/performance.md for the method.
Benches print figures and never assert speed.
"""
