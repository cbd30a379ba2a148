"""The file driver: volumes as sparse raw files in local pools, served over NBD."""
