"""Hand-written kernels equal the jnp operations they replace, bit for bit."""

import jax.numpy as jnp
import numpy as np
import pytest

from gradtx import _tree

SPECIALS = [-2.5, -1e-30, -0.0, 0.0, 1e-30, 3.0, np.nan, np.inf, -np.inf]


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16, jnp.float16])
def test_sign_equals_jnp_sign(dtype):
    x = jnp.asarray(SPECIALS + list(np.linspace(-3.0, 3.0, 101)), dtype)
    # Compared in float32: NumPy does not match NaNs of the ml_dtypes bfloat16 type.
    got = np.asarray(_tree.sign(x).astype(jnp.float32))
    want = np.asarray(jnp.sign(x).astype(jnp.float32))
    assert _tree.sign(x).dtype == x.dtype
    np.testing.assert_array_equal(got, want)  # NaN where NaN
    np.testing.assert_array_equal(np.signbit(got), np.signbit(want))  # -0.0 stays -0.0


def test_sign_float64_and_complex(x64):
    x = jnp.asarray(SPECIALS, jnp.float64)
    np.testing.assert_array_equal(np.asarray(_tree.sign(x)), np.asarray(jnp.sign(x)))
    z = jnp.asarray([1 + 1j, -2j, 0j], jnp.complex64)
    np.testing.assert_array_equal(np.asarray(_tree.sign(z)), np.asarray(jnp.sign(z)))
