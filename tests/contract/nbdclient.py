"""The block client under its former name, for the callers that still use it
(tests/faults/test_storage.py); new code imports :mod:`blockclient`."""

from tests.contract.blockclient import holds, size, url, write

__all__ = ["holds", "size", "url", "write"]
