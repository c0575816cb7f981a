"""Family "seed": 50 steps of torch.optim SGD, Adagrad, RMSprop, Adam and AdamW, every option.

The problem: two parameters, ``w`` (2x2) and ``b`` (2,), and a fixed sequence of random
gradients (``b[0]``'s gradient is exactly zero for the first three steps). The gradients do not
depend on the parameters, so a replay feeds the same sequence and compares the parameters after
every step. Keys of the saved file:

  params/w, params/b        the starting point
  grads/w, grads/b          the gradients, shape (50, *shape)
  <case>/w, <case>/b        the parameters after each of the 50 steps
  <case>/torch              how torch was called (JSON bytes, for readers)
  defaults/<class>          the constructor's defaults of each torch.optim class used (JSON bytes)

A case whose ``groups`` is "decay_w" puts ``b`` in a second param group with weight_decay 0, which
is how torch users mask weight decay (gradtx: ``weight_decay_mask={"w": True, "b": False}``).
A case with a ``scheduler`` steps that torch.optim.lr_scheduler class after every optimizer step.
"""

from __future__ import annotations

import inspect
import json

import numpy as np

STEPS = 50

# (name, torch.optim class, constructor kwargs, groups, (scheduler class, kwargs) or None)
CASES = [
    ("sgd", "SGD", {"lr": 0.1}, None, None),
    ("sgd_wd", "SGD", {"lr": 0.1, "weight_decay": 0.1}, None, None),
    ("sgd_max", "SGD", {"lr": 0.1, "maximize": True}, None, None),
    ("sgd_max_wd", "SGD", {"lr": 0.1, "weight_decay": 0.1, "maximize": True}, None, None),
    ("sgd_mom", "SGD", {"lr": 0.05, "momentum": 0.9}, None, None),
    ("sgd_mom0_damp", "SGD", {"lr": 0.1, "momentum": 0.0, "dampening": 0.5}, None, None),
    ("sgd_mom_damp", "SGD", {"lr": 0.05, "momentum": 0.9, "dampening": 0.5}, None, None),
    ("sgd_nesterov", "SGD", {"lr": 0.05, "momentum": 0.9, "nesterov": True}, None, None),
    (
        "sgd_nesterov_wd_max",
        "SGD",
        {"lr": 0.05, "momentum": 0.8, "nesterov": True, "weight_decay": 0.05, "maximize": True},
        None,
        None,
    ),
    (
        "sgd_mom_damp_wd_max",
        "SGD",
        {"lr": 0.05, "momentum": 0.9, "dampening": 0.3, "weight_decay": 0.1, "maximize": True},
        None,
        None,
    ),
    (
        "sgd_mom_wd_decay_w",
        "SGD",
        {"lr": 0.05, "momentum": 0.9, "weight_decay": 0.1},
        "decay_w",
        None,
    ),
    (
        "sgd_mom_explr",
        "SGD",
        {"lr": 0.1, "momentum": 0.9},
        None,
        ("ExponentialLR", {"gamma": 0.95}),
    ),
    ("adagrad", "Adagrad", {"lr": 0.1}, None, None),
    ("adagrad_lr_decay", "Adagrad", {"lr": 0.1, "lr_decay": 0.05}, None, None),
    ("adagrad_iav", "Adagrad", {"lr": 0.1, "initial_accumulator_value": 0.1}, None, None),
    ("adagrad_eps", "Adagrad", {"lr": 0.1, "eps": 0.1}, None, None),
    ("adagrad_wd", "Adagrad", {"lr": 0.1, "weight_decay": 0.1}, None, None),
    ("adagrad_max", "Adagrad", {"lr": 0.1, "maximize": True}, None, None),
    (
        "adagrad_all",
        "Adagrad",
        {
            "lr": 0.1,
            "lr_decay": 0.01,
            "weight_decay": 0.05,
            "initial_accumulator_value": 0.2,
            "eps": 1e-3,
            "maximize": True,
        },
        None,
        None,
    ),
    ("adagrad_wd_decay_w", "Adagrad", {"lr": 0.1, "weight_decay": 0.1}, "decay_w", None),
    (
        "adagrad_lr_decay_steplr",
        "Adagrad",
        {"lr": 0.1, "lr_decay": 0.05},
        None,
        ("StepLR", {"step_size": 10, "gamma": 0.5}),
    ),
    ("rmsprop", "RMSprop", {"lr": 0.01}, None, None),
    ("rmsprop_alpha_eps", "RMSprop", {"lr": 0.01, "alpha": 0.9, "eps": 1e-3}, None, None),
    ("rmsprop_centered", "RMSprop", {"lr": 0.01, "centered": True}, None, None),
    ("rmsprop_mom", "RMSprop", {"lr": 0.01, "momentum": 0.9}, None, None),
    (
        "rmsprop_centered_mom",
        "RMSprop",
        {"lr": 0.01, "momentum": 0.5, "centered": True},
        None,
        None,
    ),
    ("rmsprop_wd", "RMSprop", {"lr": 0.01, "weight_decay": 0.1}, None, None),
    ("rmsprop_max", "RMSprop", {"lr": 0.01, "maximize": True}, None, None),
    (
        "rmsprop_all",
        "RMSprop",
        {
            "lr": 0.01,
            "alpha": 0.95,
            "eps": 1e-4,
            "weight_decay": 0.05,
            "momentum": 0.5,
            "centered": True,
            "maximize": True,
        },
        None,
        None,
    ),
    ("rmsprop_wd_decay_w", "RMSprop", {"lr": 0.01, "weight_decay": 0.1}, "decay_w", None),
    (
        "rmsprop_mom_explr",
        "RMSprop",
        {"lr": 0.01, "momentum": 0.9},
        None,
        ("ExponentialLR", {"gamma": 0.95}),
    ),
    ("adam", "Adam", {"lr": 0.01}, None, None),
    ("adam_betas_eps", "Adam", {"lr": 0.01, "betas": (0.5, 0.9), "eps": 1e-3}, None, None),
    ("adam_amsgrad", "Adam", {"lr": 0.01, "amsgrad": True}, None, None),
    ("adam_wd", "Adam", {"lr": 0.01, "weight_decay": 0.1}, None, None),
    (
        "adam_decoupled",
        "Adam",
        {"lr": 0.01, "weight_decay": 0.1, "decoupled_weight_decay": True},
        None,
        None,
    ),
    ("adam_max", "Adam", {"lr": 0.01, "maximize": True}, None, None),
    (
        "adam_amsgrad_wd_max",
        "Adam",
        {"lr": 0.01, "amsgrad": True, "weight_decay": 0.1, "maximize": True},
        None,
        None,
    ),
    (
        "adam_decoupled_amsgrad_max",
        "Adam",
        {
            "lr": 0.01,
            "amsgrad": True,
            "weight_decay": 0.1,
            "decoupled_weight_decay": True,
            "maximize": True,
        },
        None,
        None,
    ),
    ("adam_wd_decay_w", "Adam", {"lr": 0.01, "weight_decay": 0.1}, "decay_w", None),
    ("adam_explr", "Adam", {"lr": 0.01}, None, ("ExponentialLR", {"gamma": 0.95})),
    ("adamw", "AdamW", {"lr": 0.01}, None, None),
    ("adamw_wd", "AdamW", {"lr": 0.01, "weight_decay": 0.1}, None, None),
    ("adamw_amsgrad", "AdamW", {"lr": 0.01, "weight_decay": 0.1, "amsgrad": True}, None, None),
    ("adamw_max", "AdamW", {"lr": 0.01, "weight_decay": 0.1, "maximize": True}, None, None),
    (
        "adamw_betas_eps",
        "AdamW",
        {"lr": 0.01, "betas": (0.5, 0.9), "eps": 1e-3, "weight_decay": 0.1},
        None,
        None,
    ),
    ("adamw_wd_decay_w", "AdamW", {"lr": 0.01, "weight_decay": 0.1}, "decay_w", None),
    (
        "adamw_steplr",
        "AdamW",
        {"lr": 0.01, "weight_decay": 0.1},
        None,
        ("StepLR", {"step_size": 10, "gamma": 0.5}),
    ),
]


def problem() -> dict[str, np.ndarray]:
    """The starting point and the gradient sequence (NumPy, seeded)."""
    rng = np.random.default_rng(0)
    out = {
        "params/w": rng.normal(size=(2, 2)),
        "params/b": rng.normal(size=(2,)),
        "grads/w": rng.normal(size=(STEPS, 2, 2)),
        "grads/b": 0.1 * rng.normal(size=(STEPS, 2)),
    }
    out["grads/b"][:3, 0] = 0.0
    return out


def generate() -> dict[str, np.ndarray]:
    import torch

    out = problem()
    for name, cls, kwargs, groups, scheduler in CASES:
        w = torch.tensor(out["params/w"], requires_grad=True)
        b = torch.tensor(out["params/b"], requires_grad=True)
        if groups == "decay_w":
            param_groups = [{"params": [w]}, {"params": [b], "weight_decay": 0.0}]
        else:
            assert groups is None
            param_groups = [{"params": [w, b]}]
        opt = getattr(torch.optim, cls)(param_groups, **kwargs)
        sched = None
        if scheduler is not None:
            sched = getattr(torch.optim.lr_scheduler, scheduler[0])(opt, **scheduler[1])
        traj_w, traj_b = [], []
        for k in range(STEPS):
            w.grad = torch.tensor(out["grads/w"][k])
            b.grad = torch.tensor(out["grads/b"][k])
            opt.step()
            if sched is not None:
                sched.step()
            traj_w.append(w.detach().numpy().copy())
            traj_b.append(b.detach().numpy().copy())
        out[f"{name}/w"] = np.stack(traj_w)
        out[f"{name}/b"] = np.stack(traj_b)
        call = {"optimizer": cls, "kwargs": kwargs, "groups": groups, "scheduler": scheduler}
        out[f"{name}/torch"] = np.array(json.dumps(call).encode())
    for cls in sorted({case[1] for case in CASES}):
        params = inspect.signature(getattr(torch.optim, cls).__init__).parameters
        defaults = {
            k: p.default
            for k, p in params.items()
            if k not in ("self", "params") and p.default is not inspect.Parameter.empty
        }
        out[f"defaults/{cls}"] = np.array(json.dumps(defaults).encode())
    return out
