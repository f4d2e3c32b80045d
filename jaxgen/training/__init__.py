"""Training: train state, steps, loop, checkpoints (orbax), sharding, logging."""
from jaxgen.training.loop import TRAIN_DEFAULTS, TrainResult, evaluate_nll, train
from jaxgen.training.state import TrainState, count_params, split_model, merge_model

__all__ = ["TRAIN_DEFAULTS", "TrainResult", "TrainState", "count_params", "evaluate_nll",
           "merge_model", "split_model", "train"]
