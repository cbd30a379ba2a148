"""volworker: a standalone, message-driven block-storage volume worker."""
