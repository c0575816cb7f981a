"""Noisy SGD: annealed Gaussian noise added to the gradient, the PRNG key kept in the state."""

from __future__ import annotations

from typing import Any

from ..transforms._noise import AddNoise, noise_key
from ._common import COMMON_DOCS, fill_doc, optimizer_chain


def noisy_sgd(
    learning_rate: Any,
    eta: Any = 0.01,
    gamma: Any = 0.55,
    key: Any = None,
    *,
    seed: Any = None,
    weight_decay: Any = None,
    maximize: bool = False,
    weight_decay_mask: Any = None,
):
    """SGD with annealed gradient noise, Optax's signature, defaults and key stream.

    Update rule (t = 1, 2, ...)::

        g_t = grad + weight_decay * p_{t-1}
        p_t = p_{t-1} - lr_t * (g_t + sqrt(eta / t^gamma) * z_t),   z_t ~ N(0, I)

    Args:
      {learning_rate}
      eta: the noise variance at the first step, >= 0 (float, array or schedule).
      gamma: the annealing exponent, >= 0 (0.55, the paper's; float, array or schedule).
      key: a JAX PRNG key (typed or raw uint32) or an int seed; None is seed 0. It is part of
        the transform's static structure and the state carries the evolving key, so a run is
        reproducible.
      seed: an int seed, instead of ``key``.
      {weight_decay}
      {maximize}

    Conventions: ``optax.noisy_sgd``: same signature, defaults and noise (the same key draws the
    same noise on float32 leaves; see ``add_noise``); ``weight_decay`` (torch's coupled L2
    term, before the noise) and ``maximize`` are gradtx's additions. torch.optim has no noisy
    SGD.

    References:
      Neelakantan, Vilnis, Le, Sutskever, Kaiser, Kurach, Martens, "Adding Gradient Noise
      Improves Learning for Very Deep Networks", 2015. arXiv:1511.06807
    """
    return optimizer_chain(
        "noisy_sgd",
        AddNoise(eta, gamma, noise_key("noisy_sgd", key, seed), fn="noisy_sgd"),
        learning_rate,
        weight_decay=weight_decay,
        weight_decay_mask=weight_decay_mask,
        maximize=maximize,
    )


fill_doc(noisy_sgd, **COMMON_DOCS)
