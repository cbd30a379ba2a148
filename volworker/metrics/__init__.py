"""Operators can see inside: Prometheus metrics and the health answer.

- :mod:`.families`: every metric counted as things happen (one table);
- :mod:`.recorder`: the recorders backends count with, and the hook for the
  bounded intake (:func:`intake_held`);
- :mod:`.live`: the figures read when Prometheus scrapes;
- :mod:`.http`: ``/metrics`` and ``/healthz``; :mod:`.process` ties them up.

Only the recorder is re-exported: the parts of the worker that count import
this package, and it stays cheap for them.
"""

from volworker.metrics.recorder import OFF, BackendMetrics, Recorder, intake_held

__all__ = ["OFF", "BackendMetrics", "Recorder", "intake_held"]
