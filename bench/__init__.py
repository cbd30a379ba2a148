"""volworker's benchmark suite (issue 7): ``bench/run`` or ``python -m bench``.

Every figure is measured side by side with its baseline in the same run and
reported as a ratio with min / median / max over repeats; see
:mod:`bench.__main__` for the command line and ``bench/results/`` for the
output. Nothing here is a test: no figure passes or fails.
"""
