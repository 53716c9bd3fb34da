#!/usr/bin/env bash
# Sets everything up on a fresh machine, then runs the whole test suite
# (slow integration tests included; see tests/conftest.py).
# Two pytest-xdist workers, a test file each at a time (module fixtures such
# as a trained tiny model are built once per file): much of a test's time is
# single-threaded Python (tracing, exporting), so on 2 cores the suite takes
# about 10 minutes instead of 17. `-n 0` runs it in one process.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python -m pytest tests -n 2 --dist loadfile "$@"
