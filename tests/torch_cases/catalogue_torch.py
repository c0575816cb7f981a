"""Torch trajectories for the torch.optim catalogue (adadelta ... muon), 50 steps in float64.

``generate()`` returns a flat dict of NumPy arrays; tests only read the committed
``tests/fixtures/torch_catalogue_torch.npz``. torch (2.13.0, CPU) is imported inside
``generate`` only. Run ``tests/torch_fixtures.py catalogue_torch`` or, standalone, this file with
the torch venv's Python.

The problem: every leaf gets the gradient ``c * (p - target) + noise_t`` with fixed ``c``,
``target`` and a stored noise sequence (params are saved after the steps in ``RECORDED``), so the gradient depends on the trajectory (as in training)
and the noise makes signs change (Rprop) without amplifying rounding differences.
"""

from __future__ import annotations

import numpy as np

STEPS = 50
SHAPES = {"w": (2, 3), "v": (3, 2), "b": (3,), "k": (2, 2, 3)}
RECORDED = tuple(range(11)) + tuple(range(15, STEPS + 1, 5))  # steps whose params are saved
MATRICES = ("w", "v")  # torch's Muon takes 2-D parameters only

# case -> (torch class, torch kwargs, leaves, schedule factor per scheduler step or None)
CASES: dict[str, tuple[str, dict, tuple[str, ...], float | None]] = {
    "adadelta": ("Adadelta", {}, tuple(SHAPES), None),
    "adadelta_wd": (
        "Adadelta",
        {"lr": 0.5, "rho": 0.8, "eps": 1e-5, "weight_decay": 0.1},
        tuple(SHAPES),
        None,
    ),
    "adadelta_max": ("Adadelta", {"maximize": True}, tuple(SHAPES), None),
    "adamax": ("Adamax", {"lr": 0.05}, tuple(SHAPES), None),
    "adamax_wd": (
        "Adamax",
        {"lr": 0.05, "betas": (0.8, 0.99), "eps": 1e-6, "weight_decay": 0.1},
        tuple(SHAPES),
        None,
    ),
    "adamax_max": ("Adamax", {"lr": 0.05, "maximize": True}, tuple(SHAPES), None),
    "nadam": ("NAdam", {"lr": 0.05}, tuple(SHAPES), None),
    "nadam_wd": (
        "NAdam",
        {"lr": 0.05, "weight_decay": 0.1, "momentum_decay": 0.01},
        tuple(SHAPES),
        None,
    ),
    "nadam_dwd": (
        "NAdam",
        {"lr": 0.05, "betas": (0.8, 0.99), "weight_decay": 0.1, "decoupled_weight_decay": True},
        tuple(SHAPES),
        None,
    ),
    "nadam_sched": ("NAdam", {"lr": 0.05}, tuple(SHAPES), 0.95),
    "radam": ("RAdam", {"lr": 0.05}, tuple(SHAPES), None),
    "radam_wd": (
        "RAdam",
        {"lr": 0.05, "betas": (0.8, 0.99), "weight_decay": 0.1},
        tuple(SHAPES),
        None,
    ),
    "radam_dwd": (
        "RAdam",
        {"lr": 0.05, "weight_decay": 0.1, "decoupled_weight_decay": True, "maximize": True},
        tuple(SHAPES),
        None,
    ),
    "rprop": ("Rprop", {}, tuple(SHAPES), None),
    "rprop_opts": (
        "Rprop",
        {"lr": 0.02, "etas": (0.3, 1.5), "step_sizes": (1e-3, 0.05)},
        tuple(SHAPES),
        None,
    ),
    "rprop_max_sched": ("Rprop", {"lr": 0.02, "maximize": True}, tuple(SHAPES), 0.5),
    "asgd": ("ASGD", {"lr": 0.05}, tuple(SHAPES), None),
    "asgd_avg": (
        "ASGD",
        {"lr": 0.05, "lambd": 1e-2, "alpha": 0.5, "t0": 10.0, "weight_decay": 0.1},
        tuple(SHAPES),
        None,
    ),
    "asgd_sched": (
        "ASGD",
        {"lr": 0.05, "lambd": 1e-2, "t0": 5.0, "maximize": True},
        tuple(SHAPES),
        0.9,
    ),
    "adafactor": ("Adafactor", {"lr": 0.05}, tuple(SHAPES), None),
    "adafactor_big_lr": ("Adafactor", {"lr": 0.5}, tuple(SHAPES), None),
    "adafactor_opts": (
        "Adafactor",
        {"lr": 0.05, "beta2_decay": -0.5, "eps": (1e-20, 1e-2), "d": 2.0, "weight_decay": 0.1},
        tuple(SHAPES),
        None,
    ),
    "adafactor_max_sched": ("Adafactor", {"lr": 0.5, "maximize": True}, tuple(SHAPES), 0.9),
    "muon": ("Muon", {"lr": 0.02}, MATRICES, None),
    "muon_opts": (
        "Muon",
        {
            "lr": 0.02,
            "weight_decay": 0.0,
            "momentum": 0.9,
            "nesterov": False,
            "ns_steps": 3,
            "adjust_lr_fn": "match_rms_adamw",
        },
        MATRICES,
        None,
    ),
}


def inputs() -> dict[str, np.ndarray]:
    """The fixed problem: p0, c, target and the noise sequence for every leaf."""
    rng = np.random.default_rng(20261125)
    out = {}
    for name, shape in SHAPES.items():
        out[f"inputs/p0/{name}"] = rng.normal(size=shape)
        out[f"inputs/c/{name}"] = rng.uniform(0.2, 1.0, size=shape)
        out[f"inputs/target/{name}"] = rng.normal(size=shape)
        out[f"inputs/noise/{name}"] = 0.3 * rng.normal(size=(STEPS, *shape))
    return out


def generate() -> dict[str, np.ndarray]:
    import torch

    torch.set_default_dtype(torch.float64)
    data = inputs()
    out = dict(data)
    for case, (cls_name, kwargs, leaves, factor) in CASES.items():
        params = {n: torch.tensor(data[f"inputs/p0/{n}"], requires_grad=True) for n in leaves}
        opt = getattr(torch.optim, cls_name)([params[n] for n in leaves], **kwargs)
        sched = None
        if factor is not None:
            sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda k, f=factor: f**k)
        traj = {n: [params[n].detach().numpy().copy()] for n in leaves}
        for t in range(STEPS):
            for n in leaves:
                c = torch.tensor(data[f"inputs/c/{n}"])
                tgt = torch.tensor(data[f"inputs/target/{n}"])
                noise = torch.tensor(data[f"inputs/noise/{n}"][t])
                params[n].grad = c * (params[n].detach() - tgt) + noise
            opt.step()
            if sched is not None:
                sched.step()
            for n in leaves:
                traj[n].append(params[n].detach().numpy().copy())
        for n in leaves:
            out[f"{case}/{n}"] = np.stack(traj[n])[list(RECORDED)]
        if cls_name == "ASGD":
            for n in leaves:
                out[f"{case}/ax/{n}"] = opt.state[params[n]]["ax"].numpy().copy()
    return out


if __name__ == "__main__":
    import pathlib

    path = pathlib.Path(__file__).resolve().parents[1] / "fixtures" / "torch_catalogue_torch.npz"
    np.savez_compressed(path, **generate())
    print(f"wrote {path}")
