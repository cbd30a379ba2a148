"""An in-memory driver for tests and benchmarks."""
