"""Training: settings, objectives, train state, steps, loop, evaluation, checkpoints (orbax),
sharding, logging."""
from jaxgen.training.evaluation import evaluate_nll
from jaxgen.training.interrupt import TrainingInterrupted
from jaxgen.training.loop import TrainResult, train
from jaxgen.training.objective import MaximumLikelihood, Objective, copy_model
from jaxgen.training.optim import LR_SCHEDULES, OPTIMIZERS, OptimSettings, make_optimizer
from jaxgen.training.settings import TrainSettings
from jaxgen.training.state import TrainState, count_params, merge_model, split_model

__all__ = ["LR_SCHEDULES", "MaximumLikelihood", "OPTIMIZERS", "Objective", "OptimSettings",
           "TrainResult", "TrainSettings", "TrainState", "TrainingInterrupted", "copy_model", "count_params",
           "evaluate_nll", "make_optimizer", "merge_model", "split_model", "train"]
