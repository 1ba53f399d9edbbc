"""synevo's benchmark suite: `python -m benchmarks [--quick]` (see BENCHMARKS.md)."""
