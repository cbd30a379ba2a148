"""Backend drivers for volworker (installed as ``volworker_drivers``)."""
