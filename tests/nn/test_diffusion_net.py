"""DiffusionNet against closed forms: eigenvector diffusion, exact gradients of linear
functions, frame invariance of the gradient features, rigid-motion invariance of the net."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from jaxvision.geometry import primitives
from jaxvision.geometry import spectral
from jaxvision.geometry import tangent_gradients
from jaxvision.nn import diffusion_net as dn


def test_diffusing_an_eigenvector_scales_it_by_exp_minus_lambda_t():
  v, f = primitives.icosphere(2)
  b = spectral.lbo_basis(v, f, 12)
  times = np.array([0.0, 0.01, 0.1, 1.0])
  j = np.array([1, 3, 5, 11])
  x = b.evecs[:, j]
  with jax.enable_x64():
    out = np.asarray(dn.spectral_diffusion(jnp.asarray(x), jnp.asarray(b.evals),
                                           jnp.asarray(b.evecs), jnp.asarray(b.mass),
                                           jnp.asarray(times)))
  np.testing.assert_allclose(out, x * np.exp(-b.evals[j] * np.maximum(times, dn.MIN_TIME)),
                             atol=1e-10)
  assert b.evals[11] * 1.0 > 5          # the slow/fast channels really differ


def test_gradient_of_a_linear_function_is_exact():
  v, f = primitives.grid(6, 5)
  v = np.asarray(v, np.float64)
  a = np.array([0.7, -1.3, 0.0])
  gx, gy = tangent_gradients.gradient_operators(v, f)
  _, bx, by = tangent_gradients.tangent_frames(v, f)
  u = v @ a
  assert np.ptp(v[:, 2]) == 0 and np.abs(gx @ u).max() > 0.1   # a flat grid
  np.testing.assert_allclose(gx @ u, (bx * a).sum(1), atol=1e-12)
  np.testing.assert_allclose(gy @ u, (by * a).sum(1), atol=1e-12)
  np.testing.assert_allclose(gx @ np.ones(len(v)), 0.0, atol=1e-12)
  # frames are orthonormal and tangent
  n, bx, by = tangent_gradients.tangent_frames(*primitives.icosphere(1))
  for p, q in ((n, bx), (n, by), (bx, by)):
    np.testing.assert_allclose((p * q).sum(1), 0.0, atol=1e-12)


def test_gradient_features_are_invariant_to_per_vertex_frame_rotations():
  rng = np.random.default_rng(0)
  gx, gy = rng.normal(size=(2, 30, 8))
  a_re, a_im = rng.normal(size=(2, 8, 8))
  theta = rng.uniform(0, 2 * np.pi, size=(30, 1))
  rx = np.cos(theta) * gx - np.sin(theta) * gy
  ry = np.sin(theta) * gx + np.cos(theta) * gy
  with jax.enable_x64():
    ref = np.asarray(dn.gradient_feature(gx, gy, a_re, a_im))
    rot = np.asarray(dn.gradient_feature(rx, ry, a_re, a_im))
  np.testing.assert_allclose(rot, ref, atol=1e-12)
  # and it is the closed form tanh(Re(conj(g) A g)) with complex arithmetic
  g = gx + 1j * gy
  np.testing.assert_allclose(ref, np.tanh(np.real(np.conj(g) * (g @ (a_re + 1j * a_im)))),
                             atol=1e-12)


def test_net_is_invariant_to_rigid_motions_and_trains_its_times():
  v, f = primitives.bumpy_sphere(1)
  v = np.asarray(v, np.float64)
  x = jnp.asarray(np.random.default_rng(1).normal(size=(len(v), 5)), jnp.float32)
  model = dn.DiffusionNet(out_channels=6, width=16, num_blocks=2)
  ops = dn.mesh_ops(v, f, k=20)
  params = model.init(jax.random.key(0), x, ops)
  out = model.apply(params, x, ops)
  assert out.shape == (len(v), 6) and np.all(np.isfinite(out))
  moved = v @ Rotation.from_rotvec([0.3, -1.1, 0.7]).as_matrix().T + np.array([1.0, 2, 3])
  out_moved = model.apply(params, x, dn.mesh_ops(moved, f, k=20))
  np.testing.assert_allclose(out_moved, out, atol=2e-3)
  sparse_out = model.apply(params, x, dn.mesh_ops(v, f, k=20, sparse=True))
  np.testing.assert_allclose(sparse_out, out, atol=1e-5)
  grads = jax.grad(lambda p: jnp.sum(model.apply(p, x, ops) ** 2))(params)
  assert float(jnp.abs(grads['params']['block_0']['diffusion']['times']).max()) > 0
  drop = model.apply(params, x, ops, train=True, rngs={'dropout': jax.random.key(1)})
  assert not np.allclose(drop, out)
  with pytest.raises(ValueError, match='lack'):
    model.apply(params, x, {'evals': ops['evals']})
