"""Autoregressive family builders: MADE, NADE, LSTM, PixelCNN, Gated PixelCNN, Row LSTM,
Diagonal BiLSTM, causal transformer (all on discrete levels, ``head="auto"``: Bernoulli for
binary data, categorical otherwise)."""
from __future__ import annotations


import jax
import numpy as np
from flax import nnx

from experiments.registry import ModelData, RunHooks, register
from jaxgen.autoregressive import (MADE, NADE, CausalTransformer, DiagonalBiLSTM,
                                   GatedPixelCNN, LSTMModel, PixelCNN, RowLSTM,
                                   connectivity_agnostic_loss, make_scheduled_sampling_loss)
from jaxgen.training.state import merge_model, split_model

# ``config.model`` fields of the models that may train with scheduled sampling (LSTM,
# transformer); "none" keeps teacher forcing. See `jaxgen.autoregressive.scheduled_sampling`:
# ``scheduled_sampling`` is a schedule name (constant, linear, exponential, inverse_sigmoid)
# of the probability of feeding the ground truth, with the paper's parameters ``k``, ``c``
# (linear slope) and a floor ``min``; ``method`` is "parallel" (two passes, any model) or
# "sequential" (the exact one-scan version, LSTM only).
SCHEDULED_SAMPLING_DEFAULTS = dict(
    scheduled_sampling="none", scheduled_sampling_k=1.0, scheduled_sampling_c=0.0,
    scheduled_sampling_min=0.0, scheduled_sampling_method="parallel")


def _scheduled_sampling_loss(mc):
    """``(loss_fn, extra_init)`` from ``config.model`` or None (teacher forcing).

    Fields missing from the config (one saved before they existed) take their defaults.

    Raises:
      ValueError: naming the config key, for an unknown schedule or method, a bad
        parameter, or ``method="sequential"`` on a model other than the LSTM.
    """
    field = {name: mc.get(name, default) for name, default in SCHEDULED_SAMPLING_DEFAULTS.items()}
    if field["scheduled_sampling"] == "none":
        return None
    if field["scheduled_sampling_method"] == "sequential" and mc.name != "lstm":
        raise ValueError(f"config.model.scheduled_sampling_method='sequential' needs the lstm "
                         f"model, got config.model.name={mc.name!r}; use 'parallel'")
    try:
        return make_scheduled_sampling_loss(
            field["scheduled_sampling"], method=field["scheduled_sampling_method"],
            k=field["scheduled_sampling_k"], c=field["scheduled_sampling_c"],
            min_value=field["scheduled_sampling_min"])
    except ValueError as err:
        raise ValueError(f"config.model.scheduled_sampling*: {err} (or 'none' to turn scheduled "
                         "sampling off)") from None


def _scheduled_sampling_train_kwargs(config, dataset, model=None) -> dict:
    """Scheduled sampling: the loss and its step counter (``extra``) for ``train``."""
    del dataset
    loss = _scheduled_sampling_loss(config.model)
    return {} if loss is None else {"loss_fn": loss[0], "extra_init": loss[1]}


_SCHEDULED_SAMPLING_HOOKS = RunHooks(_scheduled_sampling_train_kwargs)


@register("made", data_kind="discrete", hidden_sizes=(500,), ordering="natural",
          num_masks=1, mask_seed=0, head="auto", direct_connections=False, dropout=0.0)
def _made(mc, data: ModelData, rngs: nnx.Rngs) -> nnx.Module:
    """MADE (masked MLP); ``num_masks > 1`` evaluates the ensemble of orderings/masks."""
    return MADE(data.event_shape, data.num_levels, tuple(mc.hidden_sizes), ordering=mc.ordering,
                num_masks=mc.num_masks, mask_seed=mc.mask_seed, head=mc.head,
                direct_connections=mc.direct_connections, dropout=mc.dropout, rngs=rngs)


def _made_train_kwargs(config, dataset, model=None) -> dict:
    """``num_masks > 1``: connectivity-agnostic training (one mask per step); validation
    and test use the ensemble ``log_prob`` (``M`` passes). ``dropout > 0``: the same loss
    (`jaxgen.autoregressive.made.made_loss`) drops hidden units in training only."""
    del dataset
    if int(config.model.num_masks) > 1 or float(config.model.dropout) > 0.0:
        return {"loss_fn": connectivity_agnostic_loss}
    return {}


def _made_prepare_eval(config, dataset, model: MADE, key) -> tuple[MADE, dict]:
    """Adds each mask's own test NLL (``test_nll_nats_per_mask``, nats) next to the
    ensemble's, so one run shows what the ensemble gains over its members."""
    del key
    if model.num_masks == 1:
        return model, {}
    graphdef, params, model_state = split_model(model)

    @jax.jit
    def per_mask(params, model_state, batch):  # [B, *E] -> [M, B]
        return merge_model(graphdef, params, model_state).log_prob_per_mask(batch)

    data, batch_size = np.asarray(dataset.test), int(config.eval.batch_size)
    total = np.zeros(model.num_masks)
    for start in range(0, data.shape[0], batch_size):
        chunk = data[start:start + batch_size]
        total += np.asarray(per_mask(params, model_state, chunk)).sum(axis=1)
    nll = -total / data.shape[0]
    return model, {"test_nll_nats_per_mask": [float(v) for v in nll],
                   "test_nll_nats_mean_single_mask": float(nll.mean())}


_made.run_hooks = RunHooks(_made_train_kwargs, _made_prepare_eval)


@register("nade", data_kind="discrete", hidden_size=500, head="auto")
def _nade(mc, data: ModelData, rngs: nnx.Rngs) -> nnx.Module:
    """NADE with tied hidden weights."""
    return NADE(data.event_shape, data.num_levels, mc.hidden_size, head=mc.head, rngs=rngs)


@register("lstm", data_kind="discrete", hidden_size=256, head="auto",
          **SCHEDULED_SAMPLING_DEFAULTS)
def _lstm(mc, data: ModelData, rngs: nnx.Rngs) -> nnx.Module:
    """LSTM over the flattened raster sequence (optionally with scheduled sampling)."""
    _scheduled_sampling_loss(mc)  # bad scheduled-sampling fields fail before training
    return LSTMModel(data.event_shape, data.num_levels, mc.hidden_size, head=mc.head, rngs=rngs)


_lstm.run_hooks = _SCHEDULED_SAMPLING_HOOKS


@register("pixelcnn", data_kind="discrete", hidden_channels=64, num_layers=5,
          first_kernel_size=7, kernel_size=3, head="auto", num_mixtures=5)
def _pixelcnn(mc, data: ModelData, rngs: nnx.Rngs) -> nnx.Module:
    """PixelCNN: mask-A then residual mask-B convolutions (has a blind spot)."""
    return PixelCNN(data.event_shape, data.num_levels, hidden_channels=mc.hidden_channels,
                    num_layers=mc.num_layers, first_kernel_size=mc.first_kernel_size,
                    kernel_size=mc.kernel_size, head=mc.head, num_mixtures=mc.num_mixtures,
                    rngs=rngs)


@register("gated_pixelcnn", data_kind="discrete", hidden_channels=64, num_layers=5,
          kernel_size=5, head="auto", num_mixtures=5)
def _gated_pixelcnn(mc, data: ModelData, rngs: nnx.Rngs) -> nnx.Module:
    """Gated PixelCNN: vertical + horizontal stacks, no blind spot."""
    return GatedPixelCNN(data.event_shape, data.num_levels, hidden_channels=mc.hidden_channels,
                         num_layers=mc.num_layers, kernel_size=mc.kernel_size, head=mc.head,
                         num_mixtures=mc.num_mixtures, rngs=rngs)


@register("rowlstm", data_kind="discrete", hidden_channels=32, num_layers=2,
          first_kernel_size=7, kernel_size=3, head="auto")
def _rowlstm(mc, data: ModelData, rngs: nnx.Rngs) -> nnx.Module:
    """PixelRNN Row LSTM (one scan step per row)."""
    return RowLSTM(data.event_shape, data.num_levels, hidden_channels=mc.hidden_channels,
                   num_layers=mc.num_layers, first_kernel_size=mc.first_kernel_size,
                   kernel_size=mc.kernel_size, head=mc.head, rngs=rngs)


@register("diagonal_bilstm", data_kind="discrete", hidden_channels=32, num_layers=2,
          first_kernel_size=7, head="auto")
def _diagonal_bilstm(mc, data: ModelData, rngs: nnx.Rngs) -> nnx.Module:
    """PixelRNN Diagonal BiLSTM (skewed diagonals, two directions)."""
    return DiagonalBiLSTM(data.event_shape, data.num_levels, hidden_channels=mc.hidden_channels,
                          num_layers=mc.num_layers, first_kernel_size=mc.first_kernel_size,
                          head=mc.head, rngs=rngs)


@register("transformer", data_kind="discrete", d_model=64, num_heads=4, num_layers=2,
          mlp_ratio=4, head="auto", query_chunk=0, **SCHEDULED_SAMPLING_DEFAULTS)
def _transformer(mc, data: ModelData, rngs: nnx.Rngs) -> nnx.Module:
    """Causal transformer with learned positions over the raster sequence (optionally with
    scheduled sampling)."""
    _scheduled_sampling_loss(mc)  # bad scheduled-sampling fields fail before training
    return CausalTransformer(data.event_shape, data.num_levels, d_model=mc.d_model,
                             num_heads=mc.num_heads, num_layers=mc.num_layers,
                             mlp_ratio=mc.mlp_ratio, head=mc.head,
                             query_chunk=int(mc.query_chunk), rngs=rngs)


_transformer.run_hooks = _SCHEDULED_SAMPLING_HOOKS
