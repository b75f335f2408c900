"""Functional maps: solvers (optimality), point-map conversions, ZoomOut and hybrid ZoomOut."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from jaxvision.geometry import fmap_solvers
from jaxvision.geometry import mesh_operators as mo
from jaxvision.geometry import pointmaps
from jaxvision.geometry import primitives
from jaxvision.geometry import spectral
from jaxvision.geometry import zoomout


def bumpy(subdivisions=2):
  v, f = primitives.bumpy_sphere(subdivisions)
  return mo.normalize_area(v, f)[0], f


@pytest.fixture(scope='module')
def pair():
  """A bumpy sphere and a rotated, translated copy (ground truth: the identity)."""
  v, f = bumpy(2)
  rot = Rotation.from_euler('xyz', [0.4, -1.0, 2.5]).as_matrix()
  vy = v @ rot.T + np.array([0.3, 0.0, -2.0])
  return [(spectral.hybrid_basis(verts, f, k_lbo=30, k_elastic=20), verts, f)
          for verts in (v, vy)]


def test_identity_pair_gives_identity_maps(pair):
  (hb, v, f), _ = pair
  n = len(v)
  ident = np.arange(n)
  lb, el = hb.lbo, hb.elastic
  c = pointmaps.pointmap_to_fmap(ident, lb.evecs, lb.evecs)
  np.testing.assert_allclose(c, np.eye(lb.k), atol=1e-10)
  np.testing.assert_array_equal(pointmaps.fmap_to_pointmap(c, lb.evecs, lb.evecs), ident)
  ce = pointmaps.elastic_pointmap_to_fmap(ident, el.evecs, el.evecs, el.mass)
  np.testing.assert_allclose(ce, np.eye(el.k), atol=1e-10)
  np.testing.assert_array_equal(
      pointmaps.elastic_fmap_to_pointmap(ce, el.evecs, el.evecs, el.mass, el.mass), ident)
  np.testing.assert_array_equal(pointmaps.hybrid_fmap_to_pointmap(
      c, lb.evecs, lb.evecs, ce, el.evecs, el.evecs, el.mass, el.mass), ident)
  # The elastic embedding of the identity is Φ M_k^{-1/2} on both sides (M-whitened basis).
  ex, ey = pointmaps.elastic_embeddings(ce, el.evecs, el.evecs, el.mass, el.mass)
  np.testing.assert_allclose(ex, ey, atol=1e-9)
  np.testing.assert_allclose(ey.T @ (el.mass[:, None] * ey), np.eye(el.k), atol=1e-8)
  with pytest.raises(ValueError, match='one per target vertex'):
    pointmaps.pointmap_to_fmap(ident[:-1], lb.evecs, lb.evecs)


def _noisy_identity(v, f, frac, seed):
  """The identity with `frac` of the vertices sent to a random neighbour."""
  edges = mo.unique_edges(f)
  rng = np.random.default_rng(seed)
  p2p = np.arange(len(v))
  for i in rng.choice(len(v), int(frac * len(v)), replace=False):
    nbrs = np.concatenate([edges[edges[:, 0] == i, 1], edges[edges[:, 1] == i, 0]])
    p2p[i] = rng.choice(nbrs)
  return p2p


def test_zoomout_and_hybrid_zoomout_recover_a_rigid_copy(pair):
  (bx, vx, f), (by, _, _) = pair
  init = _noisy_identity(vx, f, 0.4, seed=0)
  truth = np.arange(len(vx))
  assert np.mean(init == truth) < 0.65
  out = zoomout.zoomout(init, bx.lbo.evecs, by.lbo.evecs, k_init=8, k_final=30)
  assert np.mean(out == truth) > 0.99
  out = zoomout.elastic_zoomout(init, bx.elastic.evecs, by.elastic.evecs, bx.elastic.mass,
                                by.elastic.mass, k_init=8, k_final=20)
  assert np.mean(out == truth) > 0.99
  out = zoomout.hybrid_zoomout(init, bx.lbo.evecs, by.lbo.evecs, bx.elastic.evecs,
                               by.elastic.evecs, bx.elastic.mass, by.elastic.mass,
                               k_init=(6, 4), k_final=(30, 20))
  assert np.mean(out == truth) > 0.99


def test_hybrid_schedule_matches_upstream_rule():
  sched = zoomout.hybrid_schedule((20, 10), (100, 100))
  assert len(sched) == 171 and sched[0] == (20, 10) and sched[-1] == (100, 100)
  assert all(0 <= b[0] - a[0] <= 1 and 0 <= b[1] - a[1] <= 1 for a, b in zip(sched, sched[1:]))
  assert sched[85] == (int(20 + 85 * 80 / 170), int(10 + 85 * 90 / 170))


def _problem(seed, k=6, c=9):
  rng = np.random.default_rng(seed)
  n = 40
  phi_x, phi_y = rng.normal(size=(n, k)), rng.normal(size=(n, k))
  mx, my = rng.uniform(0.5, 1.5, n), rng.uniform(0.5, 1.5, n)
  bx, by = spectral.make_basis(np.sort(rng.uniform(0.1, 5, k)), phi_x, mx), \
      spectral.make_basis(np.sort(rng.uniform(0.1, 5, k)), phi_y, my)
  return bx, by, rng.normal(size=(n, c)), rng.normal(size=(n, c))


def test_regularized_lbo_solver_is_the_minimiser():
  bx, by, fx, fy = _problem(0)
  with jax.enable_x64():
    args = [jnp.asarray(a) for a in (fx, fy, bx.evals, by.evals, bx.pinv, by.pinv)]
    for solver, mask, lmbda in ((fmap_solvers.regularized_fmap, fmap_solvers.resolvent_mask, 100.0),
                                (fmap_solvers.standard_fmap, None, 1e-3)):
      c = solver(*args, lmbda=lmbda)
      a, b = args[4] @ args[0], args[5] @ args[1]
      d = mask(args[2], args[3]) if mask else (args[3][:, None] - args[2][None, :]) ** 2
      objective = lambda cc: jnp.sum((cc @ a - b) ** 2) + lmbda * jnp.sum(d * cc ** 2)
      g = jax.grad(objective)(c)
      assert float(jnp.abs(g).max()) < 1e-9 * float(jnp.abs(b).max() * jnp.abs(a).max())
      assert float(objective(c)) < float(objective(c + 1e-3))


@pytest.mark.parametrize('regularizer', ['resolvent', 'standard'])
def test_elastic_kronecker_solver_is_the_hilbert_schmidt_minimiser(regularizer):
  bx, by, fx, fy = _problem(1)
  lmbda = 50.0 if regularizer == 'resolvent' else 1e-3
  with jax.enable_x64():
    j = lambda x: jnp.asarray(x)
    c = fmap_solvers.elastic_fmap(j(fx), j(fy), j(bx.evals), j(by.evals), j(bx.pinv), j(by.pinv),
                                  j(bx.sqrt_spectral_mass), j(by.sqrt_spectral_mass),
                                  lmbda=lmbda, regularizer=regularizer)
    # The same objective written with matrices, no Kronecker products or vec:
    # ‖S_y(CA − B)‖² + λ Σ ‖S_y T_y C S_x⁻¹ − S_y C S_x⁻¹ T_x‖².
    a, b = j(bx.pinv @ fx), j(by.pinv @ fy)
    sx_inv, sy = j(np.linalg.inv(bx.sqrt_spectral_mass)), j(by.sqrt_spectral_mass)
    if regularizer == 'resolvent':
      (rx, ix), (ry, iy) = fmap_solvers.resolvent_terms(j(bx.evals), j(by.evals), 0.5)
      pairs = ((rx, ry), (ix, iy))
    else:
      pairs = ((j(bx.evals), j(by.evals)),)

    def objective(cc):
      reg = sum(jnp.sum((sy @ jnp.diag(ty) @ cc @ sx_inv - sy @ cc @ sx_inv @ jnp.diag(tx)) ** 2)
                for tx, ty in pairs)
      return jnp.sum((sy @ (cc @ a - b)) ** 2) + lmbda * reg

    g = jax.grad(objective)(c)
    assert float(jnp.abs(g).max()) < 1e-8 * float(objective(jnp.zeros_like(c)))
    assert float(objective(c)) < float(objective(c.T))
