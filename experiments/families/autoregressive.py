"""Autoregressive family builders: MADE, NADE, LSTM, PixelCNN, Gated PixelCNN, Row LSTM,
Diagonal BiLSTM, causal transformer (on discrete levels, ``head="auto"``: Bernoulli for
binary data, categorical otherwise). MADE and the transformer also model real-valued data
(2D densities, dequantized images) with a continuous ``config.model.head``
(`jaxgen.autoregressive.continuous_heads.CONTINUOUS_HEADS`, ``num_mixtures`` components):
their data kind follows the head (`head_data_kind`)."""
from __future__ import annotations

from flax import nnx

from experiments.registry import ModelData, register
from jaxgen.autoregressive import (MADE, NADE, CausalTransformer, DiagonalBiLSTM,
                                   GatedPixelCNN, LSTMModel, PixelCNN, RowLSTM)
from jaxgen.autoregressive.continuous_heads import CONTINUOUS_HEADS
from jaxgen.autoregressive.objectives import MADEObjective, ScheduledSampling
from jaxgen.training import MaximumLikelihood

# ``config.model`` fields of the models that may train with scheduled sampling (LSTM,
# transformer); "none" keeps teacher forcing. See `jaxgen.autoregressive.scheduled_sampling`:
# ``scheduled_sampling`` is a schedule name (constant, linear, exponential, inverse_sigmoid)
# of the probability of feeding the ground truth, with the paper's parameters ``k``, ``c``
# (linear slope) and a floor ``min``; ``method`` is "parallel" (two passes, any model) or
# "sequential" (the exact one-scan version, LSTM only).
SCHEDULED_SAMPLING_DEFAULTS = dict(
    scheduled_sampling="none", scheduled_sampling_k=1.0, scheduled_sampling_c=0.0,
    scheduled_sampling_min=0.0, scheduled_sampling_method="parallel")


def scheduled_sampling_objective(mc, settings=None):
    """`ScheduledSampling` from ``config.model``, or `MaximumLikelihood` (teacher forcing)
    when ``scheduled_sampling="none"``.

    Raises:
      ValueError: naming the config key, for an unknown schedule or method, a bad
        parameter, ``method="sequential"`` on a model other than the LSTM, or a schedule
        with ``config.data.conditional=True`` (the passes take no context).
    """
    if mc.scheduled_sampling == "none":
        return MaximumLikelihood()
    if mc.head in CONTINUOUS_HEADS:
        raise ValueError(f"config.model.scheduled_sampling={mc.scheduled_sampling!r} mixes "
                         "sampled levels into the history, for discrete heads only; with "
                         f"config.model.head={mc.head!r} set config.model.scheduled_sampling="
                         "'none'")
    if settings is not None and settings.data.get("conditional"):
        raise ValueError("config.data.conditional=True needs teacher forcing: scheduled "
                         "sampling takes no context; set config.model.scheduled_sampling="
                         f"'none' (got {mc.scheduled_sampling!r})")
    if mc.scheduled_sampling_method == "sequential" and mc.name != "lstm":
        raise ValueError(f"config.model.scheduled_sampling_method='sequential' needs the lstm "
                         f"model, got config.model.name={mc.name!r}; use 'parallel'")
    try:
        return ScheduledSampling(mc.scheduled_sampling, method=mc.scheduled_sampling_method,
                                 k=mc.scheduled_sampling_k, c=mc.scheduled_sampling_c,
                                 min_value=mc.scheduled_sampling_min)
    except ValueError as err:
        raise ValueError(f"config.model.scheduled_sampling*: {err} (or 'none' to turn scheduled "
                         "sampling off)") from None


def head_data_kind(mc) -> str:
    """``"continuous"`` for a head in `CONTINUOUS_HEADS` (float data), else ``"discrete"``."""
    return "continuous" if mc.head in CONTINUOUS_HEADS else "discrete"


def made_objective(mc, settings) -> MADEObjective | MaximumLikelihood:
    """``num_masks > 1``: connectivity-agnostic training (one mask per step), the ensemble
    ``log_prob`` for validation and test, and each mask's test NLL in the results;
    ``dropout > 0``: hidden units dropped in training only. Otherwise plain MLE."""
    if int(mc.num_masks) > 1 or float(mc.dropout) > 0.0:
        return MADEObjective(eval_batch_size=settings.eval.batch_size)
    return MaximumLikelihood()


@register("made", data_kind="discrete", objective_fn=made_objective, conditional=True,
          data_kind_fn=head_data_kind, hidden_sizes=(500,), ordering="natural",
          num_masks=1, mask_seed=0, head="auto", num_mixtures=5, direct_connections=False,
          dropout=0.0)
def _made(mc, data: ModelData, rngs: nnx.Rngs) -> nnx.Module:
    """MADE (masked MLP); ``num_masks > 1`` evaluates the ensemble of orderings/masks."""
    return MADE(data.event_shape, data.num_levels, tuple(mc.hidden_sizes), ordering=mc.ordering,
                num_masks=mc.num_masks, mask_seed=mc.mask_seed, head=mc.head,
                num_mixtures=mc.num_mixtures,
                direct_connections=mc.direct_connections, dropout=mc.dropout,
                num_classes=data.num_classes, rngs=rngs)


@register("nade", data_kind="discrete", conditional=True, hidden_size=500, head="auto")
def _nade(mc, data: ModelData, rngs: nnx.Rngs) -> nnx.Module:
    """NADE with tied hidden weights (class-conditional: the class embedding starts the
    hidden running sum)."""
    return NADE(data.event_shape, data.num_levels, mc.hidden_size, head=mc.head,
                num_classes=data.num_classes, rngs=rngs)


@register("lstm", data_kind="discrete", objective_fn=scheduled_sampling_objective,
          hidden_size=256, head="auto",
          **SCHEDULED_SAMPLING_DEFAULTS)
def _lstm(mc, data: ModelData, rngs: nnx.Rngs) -> nnx.Module:
    """LSTM over the flattened raster sequence (optionally with scheduled sampling)."""
    return LSTMModel(data.event_shape, data.num_levels, mc.hidden_size, head=mc.head, rngs=rngs)


@register("pixelcnn", data_kind="discrete", hidden_channels=64, num_layers=5,
          first_kernel_size=7, kernel_size=3, head="auto", num_mixtures=5)
def _pixelcnn(mc, data: ModelData, rngs: nnx.Rngs) -> nnx.Module:
    """PixelCNN: mask-A then residual mask-B convolutions (has a blind spot)."""
    return PixelCNN(data.event_shape, data.num_levels, hidden_channels=mc.hidden_channels,
                    num_layers=mc.num_layers, first_kernel_size=mc.first_kernel_size,
                    kernel_size=mc.kernel_size, head=mc.head, num_mixtures=mc.num_mixtures,
                    rngs=rngs)


@register("gated_pixelcnn", data_kind="discrete", conditional=True, hidden_channels=64,
          num_layers=5,
          kernel_size=5, head="auto", num_mixtures=5)
def _gated_pixelcnn(mc, data: ModelData, rngs: nnx.Rngs) -> nnx.Module:
    """Gated PixelCNN: vertical + horizontal stacks, no blind spot."""
    return GatedPixelCNN(data.event_shape, data.num_levels, hidden_channels=mc.hidden_channels,
                         num_layers=mc.num_layers, kernel_size=mc.kernel_size, head=mc.head,
                         num_mixtures=mc.num_mixtures, num_classes=data.num_classes,
                         rngs=rngs)


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


@register("transformer", data_kind="discrete", objective_fn=scheduled_sampling_objective,
          conditional=True, data_kind_fn=head_data_kind, d_model=64, num_heads=4,
          num_layers=2, mlp_ratio=4, head="auto", num_mixtures=5, query_chunk=0,
          **SCHEDULED_SAMPLING_DEFAULTS)
def _transformer(mc, data: ModelData, rngs: nnx.Rngs) -> nnx.Module:
    """Causal transformer with learned positions over the raster sequence (optionally with
    scheduled sampling; class-conditional through a class token at position 0)."""
    return CausalTransformer(data.event_shape, data.num_levels, d_model=mc.d_model,
                             num_heads=mc.num_heads, num_layers=mc.num_layers,
                             mlp_ratio=mc.mlp_ratio, head=mc.head,
                             num_mixtures=int(mc.num_mixtures),
                             query_chunk=int(mc.query_chunk), num_classes=data.num_classes,
                             rngs=rngs)

