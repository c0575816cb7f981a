"""torch.optim.LBFGS reference trajectories for ``gradtx.torch.lbfgs``.

``generate()`` returns, for every case ``<problem>-<line search>-<setting>``, the parameters after
each ``step(closure)`` (``<case>/x``, one row per step), the loss each step returned
(``<case>/loss``) and torch's ``n_iter`` and ``func_evals`` counters after each step, plus the
problem data (``rosenbrock/x0``, ``quadratic/x0``, ``quadratic/A``, ``quadratic/b``). torch is
imported only inside ``generate``. Regenerate with ``python tests/torch_fixtures.py lbfgs``
(torch 2.13.0 CPU); ``tests/test_lbfgs.py`` only reads ``tests/fixtures/torch_lbfgs.npz``.

The problems and settings below are repeated in the test next to the gradtx call that must
reproduce them. The parameters are two tensors (``x[:2]`` and ``x[2:]``), so the flattening
across parameters is part of what is checked.
"""

from __future__ import annotations

import numpy as np

STEPS = 6
ROSENBROCK_X0 = np.array([0.5, 0.2, 0.8, 1.0, 1.5])
QUADRATIC_X0 = np.array([1.0, -2.0, 0.5, 3.0, -1.0])
# (lr, max_iter, history_size): torch's defaults, and a short memory with few inner iterations
SETTINGS = {"default": (1.0, 20, 100), "short": (0.5, 4, 3)}
LINE_SEARCHES = {"fixed": None, "wolfe": "strong_wolfe"}


def quadratic_data() -> tuple[np.ndarray, np.ndarray]:
    """An ill-conditioned SPD matrix (eigenvalues 0.1 ... 10) and a right-hand side."""
    rng = np.random.default_rng(0)
    q, _ = np.linalg.qr(rng.standard_normal((5, 5)))
    a = q @ np.diag(np.geomspace(0.1, 10.0, 5)) @ q.T
    return (a + a.T) / 2, rng.standard_normal(5)


def rosenbrock(x):
    """sum_i 100 (x_{i+1} - x_i^2)^2 + (1 - x_i)^2 (works on NumPy, torch and JAX arrays)."""
    return (100 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2).sum()


def generate() -> dict[str, np.ndarray]:
    import torch

    torch.set_default_dtype(torch.float64)
    a_np, b_np = quadratic_data()
    a, b = torch.tensor(a_np), torch.tensor(b_np)

    def quadratic(x):
        return 0.5 * x @ (a @ x) - b @ x

    problems = {"rosenbrock": (rosenbrock, ROSENBROCK_X0), "quadratic": (quadratic, QUADRATIC_X0)}
    out: dict[str, np.ndarray] = {
        "torch_version": np.asarray(torch.__version__),
        "rosenbrock/x0": ROSENBROCK_X0,
        "quadratic/x0": QUADRATIC_X0,
        "quadratic/A": a_np,
        "quadratic/b": b_np,
    }
    for pname, (fn, x0) in problems.items():
        for lname, line_search_fn in LINE_SEARCHES.items():
            for sname, (lr, max_iter, history_size) in SETTINGS.items():
                head = torch.tensor(x0[:2], requires_grad=True)
                tail = torch.tensor(x0[2:], requires_grad=True)
                opt = torch.optim.LBFGS(
                    [head, tail],
                    lr=lr,
                    max_iter=max_iter,
                    history_size=history_size,
                    line_search_fn=line_search_fn,
                )

                def closure():
                    opt.zero_grad()
                    loss = fn(torch.cat([head, tail]))
                    loss.backward()
                    return loss

                xs, losses, n_iter, evals = [], [], [], []
                for _ in range(STEPS):
                    losses.append(float(opt.step(closure).detach()))
                    xs.append(torch.cat([head, tail]).detach().numpy().copy())
                    state = opt.state[head]
                    n_iter.append(state["n_iter"])
                    evals.append(state["func_evals"])
                case = f"{pname}-{lname}-{sname}"
                out[f"{case}/x"] = np.asarray(xs)
                out[f"{case}/loss"] = np.asarray(losses)
                out[f"{case}/n_iter"] = np.asarray(n_iter)
                out[f"{case}/func_evals"] = np.asarray(evals)
    return out
