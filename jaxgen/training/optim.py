"""Optimizers and learning-rate schedules from explicit settings (optax does the work)."""
from __future__ import annotations

import dataclasses
import math

import optax

OPTIMIZERS = ("adam", "adamw", "sgd", "rmsprop")
LR_SCHEDULES = ("constant", "cosine", "warmup_cosine", "exponential")


@dataclasses.dataclass(frozen=True)
class OptimSettings:
    """The optimizer of a run.

    Attributes:
      name: one of `OPTIMIZERS`.
      lr: peak learning rate, ``> 0``.
      schedule: one of `LR_SCHEDULES`: ``constant`` (after an optional linear warm-up over
        ``warmup_steps``), ``cosine`` (decays to ``lr * end_lr_factor`` at the last step),
        ``warmup_cosine`` (linear warm-up, then cosine), ``exponential``
        (``lr * decay_rate ** (step / num_steps)``).
      warmup_steps, end_lr_factor, decay_rate: schedule parameters.
      b1, b2: Adam's moment decays.
      momentum: SGD momentum (0: none).
      weight_decay: decoupled for ``adamw``; an L2 term added to the gradient otherwise.
      grad_clip_norm: clip the global gradient norm to this value (0: off).

    Raises:
      ValueError: at construction, naming the field, for an unknown name or schedule, a
        non-positive or non-finite ``lr``, or a negative parameter.
    """

    name: str = "adam"
    lr: float = 1e-3
    schedule: str = "constant"
    warmup_steps: int = 0
    end_lr_factor: float = 0.0
    decay_rate: float = 0.1
    b1: float = 0.9
    b2: float = 0.999
    momentum: float = 0.0
    weight_decay: float = 0.0
    grad_clip_norm: float = 0.0

    def __post_init__(self):
        if self.name not in OPTIMIZERS:
            raise ValueError(f"optim.name={self.name!r} is not one of {OPTIMIZERS}")
        if self.schedule not in LR_SCHEDULES:
            raise ValueError(f"optim.schedule={self.schedule!r} is not one of {LR_SCHEDULES}")
        if not (math.isfinite(self.lr) and self.lr > 0):
            raise ValueError(f"optim.lr must be positive and finite, got {self.lr!r} "
                             "(a negative rate would ascend the loss)")
        for field in ("warmup_steps", "end_lr_factor", "decay_rate", "momentum",
                      "weight_decay", "grad_clip_norm"):
            value = getattr(self, field)
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"optim.{field} must be a non-negative number, got {value!r}")
        for field in ("b1", "b2"):
            if not 0.0 <= getattr(self, field) < 1.0:
                raise ValueError(f"optim.{field} must be in [0, 1), got {getattr(self, field)!r}")


def make_schedule(settings: OptimSettings, num_steps: int) -> optax.Schedule:
    """The learning-rate schedule of ``settings`` over a run of ``num_steps`` steps."""
    lr, warmup = float(settings.lr), int(settings.warmup_steps)
    end = lr * float(settings.end_lr_factor)
    name = settings.schedule
    if name == "constant":
        if warmup:
            return optax.join_schedules(
                [optax.linear_schedule(0.0, lr, warmup), optax.constant_schedule(lr)], [warmup])
        return optax.constant_schedule(lr)
    if name == "cosine":
        return optax.cosine_decay_schedule(lr, max(num_steps, 1), alpha=end / lr)
    if name == "warmup_cosine":
        return optax.warmup_cosine_decay_schedule(0.0, lr, warmup, max(num_steps, warmup + 1), end)
    return optax.exponential_decay(lr, max(num_steps, 1), float(settings.decay_rate))


def make_optimizer(settings: OptimSettings, num_steps: int) -> optax.GradientTransformation:
    """The optax transformation of ``settings`` (schedule over ``num_steps``, clipping).

    The schedule reads the optimizer's own step count (restored with its state), so a run
    extended to a larger ``num_steps`` follows the longer schedule from the current step on
    (cosine/exponential: the longer schedule's value there, not a restart; no new warmup).
    """
    schedule = make_schedule(settings, num_steps)
    wd = float(settings.weight_decay)
    if settings.name == "adam":
        opt = optax.adam(schedule, b1=settings.b1, b2=settings.b2)
    elif settings.name == "adamw":
        opt = optax.adamw(schedule, b1=settings.b1, b2=settings.b2, weight_decay=wd)
    elif settings.name == "sgd":
        opt = optax.sgd(schedule, momentum=float(settings.momentum) or None, nesterov=False)
    else:
        opt = optax.rmsprop(schedule)
    if wd and settings.name in ("adam", "sgd"):
        opt = optax.chain(optax.add_decayed_weights(wd), opt)
    if settings.grad_clip_norm > 0:
        opt = optax.chain(optax.clip_by_global_norm(float(settings.grad_clip_norm)), opt)
    return opt
