"""What the tests and the benchmarks share: a real ``volworker`` process
under test (:mod:`.worker`) and a listener for what it sends out
(:mod:`.listen`). Not used by the worker itself."""
