"""torch.optim.lr_scheduler reference values for gradtx's schedules.

``generate()`` returns ``{case: float64 array}``: the learning rate (and, for the cyclical
schedulers, the momentum) torch uses at step counts 0, 1, 2, ... and, for ReduceLROnPlateau, the
loss sequence fed to it and the rate after each ``step(loss)``. torch is imported only inside
``generate``. Regenerate with ``tests/torch_fixtures.py schedules`` or, standalone,
``/work/torchvenv/bin/python tests/torch_cases/schedules.py`` (torch 2.13.0 CPU); the test
``tests/test_schedules_torch.py`` only reads ``tests/fixtures/torch_schedules.npz``.

The parameters below (and ``cycle_scale``, ``iteration_scale``) are repeated in the test next to
the gradtx call that must reproduce them.
"""

from __future__ import annotations

import math

import numpy as np

LR = 0.1
STEPS = 300


def plateau_losses() -> tuple[np.ndarray, np.ndarray]:
    """A positive loss curve with plateaus and noise, and the same curve shifted below zero."""
    rng = np.random.default_rng(0)
    k = np.arange(STEPS, dtype=np.float64)
    curve = 1.0 + 2.0 * np.exp(-k / 40.0)
    curve[100:160] = curve[100]  # a long plateau
    curve[220:] = curve[219] - 0.05  # a drop to a new best, then flat to the end
    noise = rng.standard_normal(STEPS)
    noise[220:] *= 1e-3  # an almost flat tail: below zero, torch's relative test never fails it
    pos = curve + 0.01 * noise
    return pos, pos - 2.0  # the second crosses zero near step 28 and plateaus near -1


def cycle_scale(cycle):
    """A custom CyclicLR scale_fn of the cycle number (plain arithmetic, so arrays work too)."""
    return 0.8 ** (cycle - 1)


def iteration_scale(count):
    """A custom CyclicLR scale_fn of the iteration count."""
    return 1.0 / (1.0 + 0.01 * count)


def generate() -> dict[str, np.ndarray]:
    import torch
    from torch.optim import lr_scheduler as S

    torch.set_default_dtype(torch.float64)

    def opt(lr=LR, momentum=0.9):
        return torch.optim.SGD([torch.zeros(2, requires_grad=True)], lr=lr, momentum=momentum)

    def run(make, steps=STEPS, momentum=False):
        o = opt()
        sched = make(o)
        lrs, moms = [], []
        for k in range(steps):
            lrs.append(o.param_groups[0]["lr"])
            moms.append(o.param_groups[0]["momentum"])
            o.step()
            if k < steps - 1:  # OneCycleLR raises on a step past its total_steps
                sched.step()
        return np.asarray(lrs, np.float64), np.asarray(moms, np.float64)

    out: dict[str, np.ndarray] = {"torch_version": np.asarray(torch.__version__)}

    def add(name, make, steps=STEPS, momentum=False):
        lrs, moms = run(make, steps)
        out[name] = lrs
        if momentum:
            out[name + "/momentum"] = moms

    add("StepLR", lambda o: S.StepLR(o, step_size=30, gamma=0.5))
    add("MultiStepLR", lambda o: S.MultiStepLR(o, milestones=[50, 120, 200], gamma=0.3))
    add("ConstantLR", lambda o: S.ConstantLR(o, factor=0.25, total_iters=40))
    add("LinearLR", lambda o: S.LinearLR(o, start_factor=0.05, end_factor=1.0, total_iters=100))
    add("LinearLR/down", lambda o: S.LinearLR(o, start_factor=1.0, end_factor=0.1, total_iters=250))
    add("ExponentialLR", lambda o: S.ExponentialLR(o, gamma=0.99))
    add("PolynomialLR", lambda o: S.PolynomialLR(o, total_iters=250, power=2.0))
    add("CosineAnnealingLR", lambda o: S.CosineAnnealingLR(o, T_max=300, eta_min=1e-3), 301)
    add("CosineAnnealingLR/periodic", lambda o: S.CosineAnnealingLR(o, T_max=40, eta_min=0.01))
    add("MultiStepLR/repeated", lambda o: S.MultiStepLR(o, milestones=[80, 30, 0, 30], gamma=0.5))
    add(
        "CosineAnnealingWarmRestarts/T_mult=1",
        lambda o: S.CosineAnnealingWarmRestarts(o, T_0=25, T_mult=1, eta_min=1e-3),
    )
    add(
        "CosineAnnealingWarmRestarts/T_mult=2",
        lambda o: S.CosineAnnealingWarmRestarts(o, T_0=10, T_mult=2),
        320,
    )
    add("OneCycleLR/cos", lambda o: S.OneCycleLR(o, max_lr=LR, total_steps=300), momentum=True)
    add(  # the last step torch takes: count total_steps, past the last knot
        "OneCycleLR/cos/last",
        lambda o: S.OneCycleLR(o, max_lr=LR, total_steps=300),
        301,
        momentum=True,
    )
    add(
        "OneCycleLR/linear",
        lambda o: S.OneCycleLR(
            o,
            max_lr=LR,
            total_steps=300,
            pct_start=0.25,
            anneal_strategy="linear",
            div_factor=10.0,
            final_div_factor=100.0,
            base_momentum=0.8,
            max_momentum=0.9,
        ),
        momentum=True,
    )
    add(
        "OneCycleLR/three_phase",
        lambda o: S.OneCycleLR(o, max_lr=LR, total_steps=301, three_phase=True),
        301,
        momentum=True,
    )
    add(
        "CyclicLR/triangular",
        lambda o: S.CyclicLR(o, base_lr=0.01, max_lr=LR, step_size_up=20),
        momentum=True,
    )
    add(
        "CyclicLR/triangular2",
        lambda o: S.CyclicLR(
            o, base_lr=0.01, max_lr=LR, step_size_up=15, step_size_down=25, mode="triangular2"
        ),
        momentum=True,
    )
    add(
        "CyclicLR/exp_range",
        lambda o: S.CyclicLR(
            o,
            base_lr=0.01,
            max_lr=LR,
            step_size_up=20,
            mode="exp_range",
            gamma=0.995,
            base_momentum=0.85,
            max_momentum=0.95,
        ),
        momentum=True,
    )
    add(
        "CyclicLR/scale_fn/cycle",
        lambda o: S.CyclicLR(
            o, base_lr=0.01, max_lr=LR, step_size_up=15, step_size_down=10, scale_fn=cycle_scale
        ),
        momentum=True,
    )
    add(
        "CyclicLR/scale_fn/iterations",
        lambda o: S.CyclicLR(
            o,
            base_lr=0.01,
            max_lr=LR,
            step_size_up=12,
            scale_fn=iteration_scale,
            scale_mode="iterations",
        ),
        momentum=True,
    )
    # torch's defaults (every argument that has one left out)
    add("defaults/StepLR", lambda o: S.StepLR(o, step_size=7))
    add("defaults/MultiStepLR", lambda o: S.MultiStepLR(o, milestones=[3, 9]))
    add("defaults/ConstantLR", lambda o: S.ConstantLR(o))
    add("defaults/LinearLR", lambda o: S.LinearLR(o))
    add("defaults/ExponentialLR", lambda o: S.ExponentialLR(o, gamma=0.97))
    add("defaults/PolynomialLR", lambda o: S.PolynomialLR(o))
    add("defaults/CosineAnnealingLR", lambda o: S.CosineAnnealingLR(o, T_max=25))
    add("defaults/CosineAnnealingWarmRestarts", lambda o: S.CosineAnnealingWarmRestarts(o, T_0=25))
    add("defaults/CyclicLR", lambda o: S.CyclicLR(o, base_lr=0.01, max_lr=LR), momentum=True)
    add(
        "defaults/OneCycleLR",
        lambda o: S.OneCycleLR(o, max_lr=LR, epochs=3, steps_per_epoch=100),
        momentum=True,
    )
    add(
        "SequentialLR/linear+cosine",
        lambda o: S.SequentialLR(
            o,
            [
                S.LinearLR(o, start_factor=0.1, end_factor=1.0, total_iters=20),
                S.CosineAnnealingLR(o, T_max=280, eta_min=1e-3),
            ],
            milestones=[20],
        ),
    )
    add(
        "SequentialLR/constant+exponential",
        lambda o: S.SequentialLR(
            o,
            [S.ConstantLR(o, factor=0.5, total_iters=10), S.ExponentialLR(o, gamma=0.98)],
            milestones=[10],
        ),
    )
    add(
        "ChainedScheduler/constant*exponential",
        lambda o: S.ChainedScheduler(
            [S.ConstantLR(o, factor=0.5, total_iters=50), S.ExponentialLR(o, gamma=0.99)]
        ),
    )
    add(
        "ChainedScheduler/linear*step",
        lambda o: S.ChainedScheduler(
            [S.LinearLR(o, start_factor=0.1, total_iters=20), S.StepLR(o, step_size=60, gamma=0.5)]
        ),
    )

    # ReduceLROnPlateau: the rate after each step(loss).
    class FixedForNegatives(S.ReduceLROnPlateau):
        """torch's rule with the relative threshold measured from |best| (gradtx's rule)."""

        def _is_better(self, a, best):
            if self.threshold_mode == "rel" and not math.isinf(best):
                if self.mode == "min":
                    return a < best * (
                        (1.0 - self.threshold) if best >= 0 else (1.0 + self.threshold)
                    )
                return a > best * ((1.0 + self.threshold) if best >= 0 else (1.0 - self.threshold))
            return super()._is_better(a, best)

    pos, neg = plateau_losses()
    out["plateau/losses_pos"] = pos
    out["plateau/losses_neg"] = neg
    configs = {
        "min_rel": dict(
            mode="min", factor=0.7, patience=10, threshold=1e-3, cooldown=3, min_lr=1e-6
        ),
        "min_abs": dict(mode="min", factor=0.3, patience=8, threshold=0.01, threshold_mode="abs"),
        "max_rel": dict(mode="max", factor=0.5, patience=4, threshold=1e-3, cooldown=2),
    }
    for name, kw in configs.items():
        for data_name, data in (("pos", pos), ("neg", neg)):
            metric = data if kw["mode"] == "min" else -data
            for cls_name, cls in (("torch", S.ReduceLROnPlateau), ("fixed", FixedForNegatives)):
                o = opt()
                sched = cls(o, **kw)
                lrs = []
                for m in metric:
                    o.step()
                    sched.step(float(m))
                    lrs.append(o.param_groups[0]["lr"])
                out[f"plateau/{name}/{data_name}/{cls_name}"] = np.asarray(lrs, np.float64)
    return out


if __name__ == "__main__":
    import pathlib

    path = pathlib.Path(__file__).resolve().parents[1] / "fixtures" / "torch_schedules.npz"
    path.parent.mkdir(exist_ok=True)
    data = generate()
    np.savez_compressed(path, **data)
    print(f"wrote {path} ({len(data)} arrays, torch {data['torch_version']})")
