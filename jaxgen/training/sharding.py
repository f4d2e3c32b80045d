"""Data parallelism with JAX's own engine: one ``Mesh`` over all devices, batch sharded.

The same code runs on 1 or N devices and on N processes after `initialize_distributed`
(``jax.distributed``; on CPU with gloo collectives): each batch is sharded along its leading
axis over the mesh axis ``"data"``, and XLA inserts the gradient all-reduce. Parameters and
optimizer state are replicated (``"replicated"``) or sharded over the same axis
(``"fsdp"``: `state_shardings`; XLA gathers each parameter where it is used and
reduce-scatters its gradient). No hand-written collectives.

Arrays on a mesh that spans several processes are not addressable from one process: host
values go onto it with `put` (every process passes the same value) and come back with
`to_host` (an all-gather when needed).
"""
from __future__ import annotations

import os

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

DATA_AXIS = "data"


SHARDINGS = ("replicated", "fsdp")
# Leaves with fewer elements stay replicated under "fsdp": sharding a bias or a scalar
# saves nothing and costs a collective each.
FSDP_MIN_SIZE = 1024

# The environment `initialize_distributed` reads when its arguments are not given (what
# `experiments.launch` sets for each process it starts).
ENV_COORDINATOR, ENV_NUM_PROCESSES, ENV_PROCESS_ID = (
    "JAX_COORDINATOR_ADDRESS", "JAX_NUM_PROCESSES", "JAX_PROCESS_ID")


def initialize_distributed(coordinator_address: str | None = None,
                           num_processes: int | None = None,
                           process_id: int | None = None) -> bool:
    """Joins a multi-process run (``jax.distributed.initialize``) before any device is used.

    Arguments not given are read from ``JAX_COORDINATOR_ADDRESS``, ``JAX_NUM_PROCESSES`` and
    ``JAX_PROCESS_ID``; with none of them, ``JAXGEN_DISTRIBUTED=1`` lets ``jax.distributed``
    auto-detect the cluster (SLURM, TPU pods, Open MPI). On the CPU backend the collectives
    are gloo's (``jax_cpu_collectives_implementation``), so N processes on one machine form
    one N-device mesh. Returns whether this process is part of a multi-process run.

    Raises:
      ValueError: an incomplete or inconsistent process layout (naming the values).
    """
    env = os.environ
    coordinator_address = coordinator_address or env.get(ENV_COORDINATOR) or None
    if num_processes is None and env.get(ENV_NUM_PROCESSES):
        num_processes = int(env[ENV_NUM_PROCESSES])
    if process_id is None and env.get(ENV_PROCESS_ID):
        process_id = int(env[ENV_PROCESS_ID])
    explicit = (coordinator_address, num_processes, process_id)
    if all(v is None for v in explicit) and env.get("JAXGEN_DISTRIBUTED") != "1":
        return False
    if any(v is not None for v in explicit):
        if num_processes is not None and num_processes < 1:
            raise ValueError(f"num_processes must be >= 1, got {num_processes}")
        if (num_processes is not None and process_id is not None
                and not 0 <= process_id < num_processes):
            raise ValueError(f"process_id={process_id} is not in [0, num_processes="
                             f"{num_processes})")
        if num_processes == 1 and coordinator_address is None:
            return False
    if jax.distributed.is_initialized():
        return jax.process_count() > 1
    platforms = env.get("JAX_PLATFORMS", "") or str(jax.config.jax_platforms or "")
    if platforms in ("", "cpu") or platforms.startswith("cpu"):
        # a no-op on GPU/TPU backends, whose collectives are NCCL's / the ICI's
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(coordinator_address=coordinator_address,
                               num_processes=num_processes, process_id=process_id)
    return jax.process_count() > 1


def is_main_process() -> bool:
    """Whether this process writes the run's files (results, metrics, plots): process 0."""
    return jax.process_index() == 0


def make_mesh(devices=None) -> Mesh:
    """A 1-D mesh over ``devices`` (default: every device of every process)."""
    devices = jax.devices() if devices is None else devices
    return Mesh(np.asarray(devices), (DATA_AXIS,))


def replicated(mesh: Mesh) -> NamedSharding:
    return NamedSharding(mesh, P())


def batch_sharded(mesh: Mesh) -> NamedSharding:
    return NamedSharding(mesh, P(DATA_AXIS))


def put(tree, sharding):
    """Host values (the same on every process) as global arrays with ``sharding``.

    ``sharding`` is one sharding for every leaf or a pytree of them (a prefix of ``tree``).
    Unlike ``jax.device_put`` this also places data on meshes whose devices belong to other
    processes: each process fills its own shards from its copy.
    """
    def one(x, s):
        if isinstance(x, jax.Array) and jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
            return jax.random.wrap_key_data(one(jax.random.key_data(x), s),
                                            impl=jax.random.key_impl(x))
        x = np.asarray(jax.device_get(x)) if isinstance(x, jax.Array) else np.asarray(x)
        if jax.process_count() == 1:
            return jax.device_put(x, s)
        return jax.make_array_from_callback(x.shape, s, lambda index: x[index])

    if isinstance(sharding, jax.sharding.Sharding):
        return jax.tree.map(lambda x: one(x, sharding), tree)
    return jax.tree.map(one, tree, sharding)


def to_host(tree):
    """Numpy copies of the (global) arrays of ``tree``, gathered across processes when a
    leaf is not fully replicated."""
    def one(x):
        if isinstance(x, jax.Array) and not (x.is_fully_addressable or x.is_fully_replicated):
            from jax.experimental import multihost_utils
            return np.asarray(multihost_utils.process_allgather(x, tiled=True))
        if isinstance(x, jax.Array) and not x.is_fully_addressable:
            return np.asarray(x.addressable_data(0))
        return np.asarray(jax.device_get(x))

    return jax.tree.map(one, tree)


def max_across_processes(values: list[int]) -> list[int]:
    """Element-wise maximum of small integer lists over all processes (a host all-gather;
    every process must call it)."""
    if jax.process_count() == 1:
        return [int(v) for v in values]
    from jax.experimental import multihost_utils
    gathered = multihost_utils.process_allgather(np.asarray(values, np.int32))
    return [int(v) for v in np.asarray(gathered).reshape(-1, len(values)).max(axis=0)]


def _fsdp_spec(shape, num_shards: int) -> P:
    """Shard the largest axis the device count divides (the first of equal ones); replicate
    leaves smaller than `FSDP_MIN_SIZE` or with no such axis."""
    if num_shards == 1 or int(np.prod(shape, dtype=np.int64)) < FSDP_MIN_SIZE:
        return P()
    axes = [a for a in np.argsort([-d for d in shape], kind="stable")
            if shape[a] % num_shards == 0]
    if not axes:
        return P()
    spec = [None] * len(shape)
    spec[int(axes[0])] = DATA_AXIS
    return P(*spec)


def param_shardings(tree, mesh: Mesh, mode: str = "replicated"):
    """A pytree of ``NamedSharding`` objects for the arrays of ``tree`` (parameters, or optimizer
    state shaped like them): all replicated, or (``"fsdp"``) each leaf sharded along one
    axis over the mesh (`_fsdp_spec`)."""
    if mode not in SHARDINGS:
        raise ValueError(f"unknown sharding {mode!r}; known: {list(SHARDINGS)}")
    n = mesh.devices.size
    return jax.tree.map(
        lambda x: NamedSharding(mesh, P() if mode == "replicated" else _fsdp_spec(
            np.shape(x), n)), tree)


def state_shardings(state, mesh: Mesh, mode: str = "replicated"):
    """Shardings of a `jaxgen.training.TrainState`: parameters, their EMA and the optimizer
    state by `param_shardings`; the step, model state (running statistics), objective
    state and data order replicated."""
    rep = replicated(mesh)
    return state._replace(
        step=rep, bad_step=rep,
        params=param_shardings(state.params, mesh, mode),
        ema_params=(None if state.ema_params is None
                    else param_shardings(state.ema_params, mesh, mode)),
        opt_state=param_shardings(state.opt_state, mesh, mode),
        model_state=jax.tree.map(lambda _: rep, state.model_state),
        extra=jax.tree.map(lambda _: rep, state.extra),
        data_order=None if state.data_order is None else rep)


def check_batch_divisible(batch_size: int, mesh: Mesh) -> None:
    n = mesh.devices.size
    if batch_size % n:
        raise ValueError(
            f"batch_size={batch_size} must be divisible by the number of devices ({n}) "
            "for data-parallel training")
