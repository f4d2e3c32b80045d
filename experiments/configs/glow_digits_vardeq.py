"""Glow on 8x8 digits (17 levels) with variational dequantization (Flow++):
``data.dequantize=variational``.

The model is `glow_digits`'s Glow (``model.num_scales=2`` levels of ``model.num_steps=8``
steps, ``model.hidden_channels=32``; same training budget ``train.num_steps=6000`` and
optimizer) as the density on ``[0, 1)^64``, and a learned noise distribution ``q(u | x)``:
``data.dequantizer_couplings=4`` checkerboard affine couplings with conditioners of width
``data.dequantizer_hidden_channels=32``, reading a 3x3-convolutional embedding of the
levels (``data.dequantizer_context_features=16`` channels), then a sigmoid; it starts
uniform. Both train jointly on the variational bound
``E_q[-log p((x + u) / 17) + log q(u | x)] + 64 ln 17``; results report that bound (test/valid
bits/dim) and the importance-weighted test NLL with ``data.iw_samples=16`` draws
(``test_nll_iw_nats``, ``test_bits_per_dim_iw``).
"""
from experiments.configs import _flows, common


def get_config():
    return _flows.image_config(
        "glow", common.data_config("digits", dequantize="variational",
                                   dequantizer_couplings=4, dequantizer_hidden_channels=32,
                                   dequantizer_context_features=16, iw_samples=16),
        train=dict(num_steps=6000, batch_size=64, steps_per_call=1, log_every=500,
                   eval_every=250, patience=6),
        optim=dict(name="adam", lr=1e-3, schedule="cosine", grad_clip_norm=100.0),
        num_scales=2, num_steps=8, hidden_channels=32, init_batch_size=512)
