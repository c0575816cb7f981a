"""Regression tests: each one failed before the fix of the behaviour it names."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import gradtx

# --------------------------------------------------------------------------------------------
# Muon on complex matrices follows Optax's convention (X X^H, |x|^2 in the norm)


def _complex_matrix(shape, seed):
    k1, k2 = jax.random.split(jax.random.PRNGKey(seed))
    return (jax.random.normal(k1, shape) + 1j * jax.random.normal(k2, shape)).astype(jnp.complex64)


def test_muon_complex_matrix_matches_optax(standard_promotion):
    # Square, so both libraries' shape scale is 1; the first step orthogonalises the direction of
    # the gradient in both (Optax's bias correction only rescales it, and the iteration
    # normalises it away).
    g = _complex_matrix((4, 4), 0)
    p = jnp.zeros((4, 4), jnp.complex64)
    tx = gradtx.muon(0.1, weight_decay=0.0, ns_dtype=jnp.float32)
    u, _ = tx.update(g, tx.init(p), p)
    ref = optax.contrib.muon(0.1)
    u_ref, _ = ref.update(g, ref.init(p), p)
    assert u.dtype == jnp.complex64
    np.testing.assert_allclose(np.asarray(u), np.asarray(u_ref), rtol=1e-5, atol=1e-6)


def test_muon_keeps_the_imaginary_part(standard_promotion):
    p = jnp.eye(3, dtype=jnp.complex64)
    g = 1j * jnp.eye(3, dtype=jnp.complex64)
    tx = gradtx.muon(0.1, weight_decay=0.0, ns_dtype=jnp.float32)
    u, _ = tx.update(g, tx.init(p), p)
    ref = optax.contrib.muon(0.1)
    u_ref, _ = ref.update(g, ref.init(p), p)
    assert np.all(np.abs(np.imag(np.diag(np.asarray(u)))) > 0.05)
    np.testing.assert_allclose(np.asarray(u), np.asarray(u_ref), rtol=1e-5, atol=1e-6)
