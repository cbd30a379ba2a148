"""Deployment artefacts: systemd units, the sample and quick-start configs,
the devstack plugin."""
