"""The rbd driver: volumes as Ceph RBD images, attached by the clients' own
librbd (Nova, os-brick, qemu)."""
