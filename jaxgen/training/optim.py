"""Optimizers and schedules from a config section (optax does the work)."""
from __future__ import annotations

import optax

OPTIMIZERS = ("adam", "adamw", "sgd", "rmsprop")
SCHEDULES = ("constant", "cosine", "warmup_cosine", "exponential")


def make_schedule(optim_config, num_steps: int) -> optax.Schedule:
    """Learning-rate schedule: ``constant``, ``cosine`` (decays to ``lr * end_lr_factor``),
    ``warmup_cosine`` (linear warm-up over ``warmup_steps``), ``exponential``
    (``lr * decay_rate ** (step / num_steps)``)."""
    lr = float(optim_config.lr)
    name = optim_config.get("schedule", "constant")
    end = lr * float(optim_config.get("end_lr_factor", 0.0))
    warmup = int(optim_config.get("warmup_steps", 0))
    if name == "constant":
        if warmup:
            return optax.join_schedules(
                [optax.linear_schedule(0.0, lr, warmup), optax.constant_schedule(lr)], [warmup])
        return optax.constant_schedule(lr)
    if name == "cosine":
        return optax.cosine_decay_schedule(lr, max(num_steps, 1), alpha=end / lr if lr else 0.0)
    if name == "warmup_cosine":
        return optax.warmup_cosine_decay_schedule(0.0, lr, warmup, max(num_steps, warmup + 1), end)
    if name == "exponential":
        return optax.exponential_decay(lr, max(num_steps, 1),
                                       float(optim_config.get("decay_rate", 0.1)))
    raise ValueError(f"optim.schedule={name!r} is not one of {SCHEDULES}")


def make_optimizer(optim_config, num_steps: int) -> optax.GradientTransformation:
    """``optim.name`` in {adam, adamw, sgd, rmsprop}, with ``optim.grad_clip_norm`` (0 = off)."""
    name = optim_config.name
    schedule = make_schedule(optim_config, num_steps)
    b1, b2 = float(optim_config.get("b1", 0.9)), float(optim_config.get("b2", 0.999))
    wd = float(optim_config.get("weight_decay", 0.0))
    if name == "adam":
        opt = optax.adam(schedule, b1=b1, b2=b2)
        if wd:
            opt = optax.chain(optax.add_decayed_weights(wd), opt)
    elif name == "adamw":
        opt = optax.adamw(schedule, b1=b1, b2=b2, weight_decay=wd)
    elif name == "sgd":
        momentum = float(optim_config.get("momentum", 0.0)) or None
        opt = optax.sgd(schedule, momentum=momentum, nesterov=False)
        if wd:
            opt = optax.chain(optax.add_decayed_weights(wd), opt)
    elif name == "rmsprop":
        opt = optax.rmsprop(schedule)
    else:
        raise ValueError(f"optim.name={name!r} is not one of {OPTIMIZERS}")
    clip = float(optim_config.get("grad_clip_norm", 0.0))
    if clip > 0:
        opt = optax.chain(optax.clip_by_global_norm(clip), opt)
    return opt
