"""Data parallelism with JAX's own engine: one ``Mesh`` over all devices, batch sharded.

The same code runs on 1 or N devices (and N hosts after ``jax.distributed.initialize()``):
parameters and optimizer state are replicated, each batch is sharded along its leading axis
over the mesh axis ``"data"``, and XLA inserts the gradient all-reduce. No hand-written
collectives.
"""
from __future__ import annotations

import os

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

DATA_AXIS = "data"


def maybe_initialize_distributed() -> bool:
    """Calls ``jax.distributed.initialize()`` when launched as one process of many.

    Honoured when the usual multi-host environment is present (``JAX_COORDINATOR_ADDRESS``, or
    a cluster that ``jax.distributed`` auto-detects such as SLURM/TPU pods with
    ``JAXGEN_DISTRIBUTED=1``). Returns whether it initialized.
    """
    if os.environ.get("JAX_COORDINATOR_ADDRESS") or os.environ.get("JAXGEN_DISTRIBUTED") == "1":
        try:
            jax.distributed.initialize()
        except RuntimeError as err:  # already initialized
            if "already" not in str(err).lower():
                raise
        return True
    return False


def make_mesh(devices=None) -> Mesh:
    """A 1-D mesh over ``devices`` (default: every device of every process)."""
    devices = jax.devices() if devices is None else devices
    return Mesh(np.asarray(devices), (DATA_AXIS,))


def replicated(mesh: Mesh) -> NamedSharding:
    return NamedSharding(mesh, P())


def batch_sharded(mesh: Mesh) -> NamedSharding:
    return NamedSharding(mesh, P(DATA_AXIS))


def check_batch_divisible(batch_size: int, mesh: Mesh) -> None:
    n = mesh.devices.size
    if batch_size % n:
        raise ValueError(
            f"batch_size={batch_size} must be divisible by the number of devices ({n}) "
            "for data-parallel training")
