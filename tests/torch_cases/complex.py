"""Family "complex": torch.optim on complex parameters, 20 steps in complex128.

torch runs most of its optimizers on ``view_as_real`` of a complex parameter: the real and the
imaginary part are two real numbers, each with its own statistics. The problem: one complex
matrix ``z`` (2x3) and one real vector ``r`` (3,), gradients ``c * (p - target) + noise_t``
(``conj``-free: the gradient of a complex parameter is given directly), so the trajectory feeds
back into the gradients. Keys:

  inputs/p0/<leaf>, inputs/c/<leaf>, inputs/target/<leaf>, inputs/noise/<leaf>   the problem
  <case>/<leaf>      the parameters after each of the STEPS steps, shape (STEPS, *shape)
"""

from __future__ import annotations

import numpy as np

STEPS = 20
LEAVES = ("z", "r")

# case -> (torch.optim class, constructor kwargs)
CASES: dict[str, tuple[str, dict]] = {
    "sgd_nesterov": ("SGD", {"lr": 0.05, "momentum": 0.9, "nesterov": True, "weight_decay": 0.1}),
    "adam": ("Adam", {"lr": 0.05}),
    "adam_amsgrad_wd": ("Adam", {"lr": 0.05, "amsgrad": True, "weight_decay": 0.1}),
    "adamw": ("AdamW", {"lr": 0.05, "betas": (0.8, 0.99)}),
    "adagrad": ("Adagrad", {"lr": 0.1, "lr_decay": 0.01, "initial_accumulator_value": 0.1}),
    "adadelta": ("Adadelta", {"lr": 0.5, "weight_decay": 0.1}),
    "adamax": ("Adamax", {"lr": 0.05, "maximize": True}),
    "asgd": ("ASGD", {"lr": 0.05, "lambd": 1e-2, "t0": 5.0}),
    "nadam": ("NAdam", {"lr": 0.05, "weight_decay": 0.1, "decoupled_weight_decay": True}),
    "radam": ("RAdam", {"lr": 0.05, "betas": (0.9, 0.99)}),
    "rmsprop": ("RMSprop", {"lr": 0.01, "momentum": 0.5, "centered": True}),
    "rprop": ("Rprop", {"lr": 0.02}),
}


def inputs() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(20260301)

    def draw(shape, cplx):
        x = rng.normal(size=shape)
        return x + 1j * rng.normal(size=shape) if cplx else x

    out = {}
    for name, shape, cplx in (("z", (2, 3), True), ("r", (3,), False)):
        out[f"inputs/p0/{name}"] = draw(shape, cplx)
        out[f"inputs/c/{name}"] = rng.uniform(0.2, 1.0, size=shape)
        out[f"inputs/target/{name}"] = draw(shape, cplx)
        out[f"inputs/noise/{name}"] = 0.3 * draw((STEPS, *shape), cplx)
    return out


def generate() -> dict[str, np.ndarray]:
    import torch

    data = inputs()
    out = dict(data)
    for case, (cls_name, kwargs) in CASES.items():
        params = {n: torch.tensor(data[f"inputs/p0/{n}"], requires_grad=True) for n in LEAVES}
        opt = getattr(torch.optim, cls_name)([params[n] for n in LEAVES], **kwargs)
        traj = {n: [] for n in LEAVES}
        for t in range(STEPS):
            for n in LEAVES:
                c = torch.tensor(data[f"inputs/c/{n}"])
                tgt = torch.tensor(data[f"inputs/target/{n}"])
                noise = torch.tensor(data[f"inputs/noise/{n}"][t])
                params[n].grad = c * (params[n].detach() - tgt) + noise
            opt.step()
            for n in LEAVES:
                traj[n].append(params[n].detach().numpy().copy())
        for n in LEAVES:
            out[f"{case}/{n}"] = np.stack(traj[n])
    return out
