"""One process of a two-process sharded sweep (run by tests/test_sweep_scale.py).

Usage: python tests/_sweep_worker.py PORT PROCESS_ID OUT.npz. Each process has 4 CPU devices; the
sweep's settings are split over all 8 devices of the two processes.
"""

from __future__ import annotations

import os
import sys

# The parent's compile settings (tests/conftest.py), so that both processes round alike, with 4
# devices here.
os.environ["XLA_FLAGS"] = " ".join(
    [
        *(f for f in os.environ.get("XLA_FLAGS", "").split() if "device_count" not in f),
        "--xla_force_host_platform_device_count=4",
    ]
)

import jax
import numpy as np

jax.config.update("jax_cpu_collectives_implementation", "gloo")


def main() -> None:
    port, pid, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    jax.distributed.initialize(
        f"127.0.0.1:{port}", num_processes=2, process_id=pid, initialization_timeout=60
    )
    import gradtx
    from tests._sweep_problems import LRS32, PARAMS, lsq_data, lsq_loss

    assert jax.device_count() == 8 and jax.local_device_count() == 4
    mesh = jax.sharding.Mesh(np.array(jax.devices()), ("d",))
    res = gradtx.sweep(
        lsq_loss, PARAMS, lsq_data(), "adam", {"learning_rate": LRS32}, 12, mesh=mesh
    )
    w = res.params["w"]
    best = res.best(1)[0]
    np.savez(
        out,
        losses=res.losses,
        final_loss=res.final_loss,
        best=best,
        best_w=np.asarray(res.params_of(best)["w"]),
        devices=len(w.sharding.device_set),
        local_shards=len(w.addressable_shards),
        local_rows=sum(s.data.shape[0] for s in w.addressable_shards),
    )
    jax.distributed.shutdown()


if __name__ == "__main__":
    main()
