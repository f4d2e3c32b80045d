"""`TrainSettings`: every choice the training loop makes, as one typed, validated value.

The library takes explicit arguments: `jaxgen.training.train` reads a `TrainSettings`, never
a config object. ``experiments/schema.py`` builds one from a run's config (once).
"""
from __future__ import annotations

import dataclasses

from jaxgen.training.optim import OptimSettings


@dataclasses.dataclass(frozen=True)
class TrainSettings:
    """How to train.

    Attributes:
      num_steps: optimizer steps in total (a resumed run continues up to it).
      batch_size: examples per step (divisible by the number of devices).
      steps_per_call: optimizer steps per dispatch, run in one ``lax.scan``; the intervals
        below must be multiples of it.
      log_every: train metrics to ``metrics.jsonl`` every this many steps (0: only at the end).
      eval_every: validation NLL every this many steps (0: only at the end).
      checkpoint_every: checkpoint every this many steps (0: only at the end / early stop).
        A checkpoint is also written at every evaluation, every ``checkpoint_every_s``
        seconds, and when SIGINT/SIGTERM stops the run (`jaxgen.training.interrupt`).
      checkpoint_every_s: seconds of training between time-based checkpoints (0: off).
      keep_checkpoints: how many checkpoints to keep.
      patience: stop after this many evaluations without a better validation NLL (0: never).
      ema_decay: decay of the parameters' exponential moving average, evaluated instead of
        the raw parameters when ``> 0``; in ``[0, 1)``.
      eval_batch_size: examples per evaluation batch.
      progress: show a tqdm bar when stderr is a terminal (never in logs or CI).
      seed: the run's seed; batches, step keys and objective state derive from it.
      sharding: ``"replicated"`` (every device holds the parameters and optimizer state)
        or ``"fsdp"`` (each is sharded over the devices along one axis,
        `jaxgen.training.sharding.state_shardings`); the same step and results either way,
        and checkpoints restore under either, on any device count.
      compute_dtype: ``"float32"``, or ``"bfloat16"`` / ``"float16"`` for mixed precision:
        the training step's matrix products and convolutions take operands in that dtype
        and accumulate in float32; parameters, optimizer state, log-determinants, losses
        and evaluation stay float32 (`jaxgen.nn.mixed_precision`). Products outside
        `jaxgen.nn`'s layers (the 1x1 convolution's ``x @ W``, Boltzmann machines' own
        ``precision`` setting) stay as they are.
      optim: the optimizer.

    Raises:
      ValueError: at construction, naming the field and value.
    """

    num_steps: int = 1000
    batch_size: int = 128
    steps_per_call: int = 1
    log_every: int = 100
    eval_every: int = 500
    checkpoint_every: int = 0
    checkpoint_every_s: float = 300.0
    keep_checkpoints: int = 3
    patience: int = 0
    ema_decay: float = 0.0
    eval_batch_size: int = 1000
    progress: bool = True
    seed: int = 0
    sharding: str = "replicated"
    compute_dtype: str = "float32"
    optim: OptimSettings = dataclasses.field(default_factory=OptimSettings)

    # Fields that may change when a run resumes from its checkpoints (the one resume
    # policy: `experiments.schema` derives the config keys from it). They change how long
    # the run goes on and what it shows, not the steps already taken.
    RESUMABLE = ("num_steps", "progress", "log_every", "checkpoint_every", "checkpoint_every_s",
                 "keep_checkpoints", "eval_batch_size", "sharding")

    def __post_init__(self):
        for name in ("num_steps", "batch_size", "steps_per_call", "eval_batch_size",
                     "keep_checkpoints"):
            if int(getattr(self, name)) <= 0:
                raise ValueError(f"train.{name} must be positive, got {getattr(self, name)!r}")
        k = int(self.steps_per_call)
        for name in ("num_steps", "log_every", "eval_every", "checkpoint_every"):
            value = int(getattr(self, name))
            if value < 0 or value % k:
                raise ValueError(f"train.{name}={value} must be a non-negative multiple of "
                                 f"train.steps_per_call={k}")
        if int(self.patience) < 0:
            raise ValueError(f"train.patience must be >= 0, got {self.patience!r}")
        if not float(self.checkpoint_every_s) >= 0.0:
            raise ValueError(f"train.checkpoint_every_s must be >= 0, got "
                             f"{self.checkpoint_every_s!r}")
        if not 0.0 <= float(self.ema_decay) < 1.0:
            raise ValueError(f"train.ema_decay must be in [0, 1), got {self.ema_decay!r}")
        from jaxgen.training.sharding import SHARDINGS
        from jaxgen.nn.mixed_precision import COMPUTE_DTYPES
        if self.sharding not in SHARDINGS:
            raise ValueError(f"train.sharding must be one of {list(SHARDINGS)}, got "
                             f"{self.sharding!r}")
        if self.compute_dtype not in COMPUTE_DTYPES:
            raise ValueError(f"train.compute_dtype must be one of {list(COMPUTE_DTYPES)}, got "
                             f"{self.compute_dtype!r}")
        if not isinstance(self.optim, OptimSettings):
            raise TypeError(f"train.optim must be an OptimSettings, got "
                            f"{type(self.optim).__name__}")

    def fingerprint(self) -> dict:
        """What a resumed run must share with the run that wrote the checkpoints."""
        record = dataclasses.asdict(self)
        for name in self.RESUMABLE:
            record.pop(name)
        return record
