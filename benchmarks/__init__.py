"""commsim's benchmarks: one module a benchmark, run from the repository root as ``python -m benchmarks.NAME``.

The shared helpers (command-line options, result files with their provenance line, timing, the
parallel trainings) are in :mod:`benchmarks.runlib`; ``benchmarks/README.md`` lists every script,
what it writes, how long it takes and the convention a new one follows.
"""
