"""LBO / elastic spectral bases, projections and spectral masses; HKS and WKS."""

import jax
import jax.numpy as jnp
import numpy as np
import scipy.linalg
from scipy.spatial.transform import Rotation

from jaxvision.geometry import descriptors
from jaxvision.geometry import mesh_operators as mo
from jaxvision.geometry import primitives
from jaxvision.geometry import spectral


def bumpy(subdivisions=2):
  """An icosphere deformed without symmetries (simple LBO spectrum)."""
  v, f = primitives.bumpy_sphere(subdivisions)
  return mo.normalize_area(v, f)[0], f


def test_sphere_lbo_spectrum_approaches_l_l_plus_1():
  errors = []
  for s in (2, 3):
    v, f = primitives.icosphere(s, radius=2.0)
    vals = spectral.lbo_basis(v, f, 16).evals
    assert abs(vals[0]) < 1e-6
    groups = [vals[1:4], vals[4:9], vals[9:16]]       # multiplicities 2l + 1
    exact = np.array([l * (l + 1) / 4.0 for l in (1, 2, 3)])
    errors.append([abs(np.mean(g) / e - 1) for g, e in zip(groups, exact)])
    for g, e in zip(groups, exact):
      assert np.ptp(g) < 0.01 * e                     # degenerate within a group
  assert np.all(np.array(errors[1]) < 0.015)
  assert np.all(np.array(errors[1]) < np.array(errors[0]))   # converges under refinement


def test_lbo_matches_a_dense_generalized_reference():
  v, f = bumpy(1)
  b = spectral.lbo_basis(v, f, 10)
  lap = mo.cotan_laplacian(v, f).toarray()
  mass = mo.barycentric_mass(v, f)
  mass = mass + 1e-8 * mass.mean()
  ref = scipy.linalg.eigh(lap + 1e-8 * np.eye(len(v)), np.diag(mass), eigvals_only=True)[:10]
  np.testing.assert_allclose(b.evals[1:], ref[1:], rtol=1e-9)
  np.testing.assert_allclose(b.evecs.T @ (b.mass[:, None] * b.evecs), np.eye(10), atol=1e-9)
  resid = (lap + 1e-8 * np.eye(len(v))) @ b.evecs - b.mass[:, None] * b.evecs * b.evals
  assert np.abs(resid).max() < 1e-9


def test_make_basis_projection_and_spectral_mass():
  rng = np.random.default_rng(0)
  phi = rng.normal(size=(50, 7))
  mass = rng.uniform(0.5, 2.0, 50)
  b = spectral.make_basis(np.arange(7.0), phi, mass)
  mk = phi.T @ np.diag(mass) @ phi
  np.testing.assert_allclose(b.pinv, np.linalg.solve(mk, phi.T @ np.diag(mass)), atol=1e-12)
  np.testing.assert_allclose(b.pinv @ phi, np.eye(7), atol=1e-12)
  np.testing.assert_allclose(b.sqrt_spectral_mass @ b.sqrt_spectral_mass, mk, atol=1e-10)
  np.testing.assert_allclose(b.sqrt_spectral_mass, scipy.linalg.sqrtm(mk).real, atol=1e-10)
  np.testing.assert_allclose(b.sqrt_spectral_mass @ b.inv_sqrt_spectral_mass, np.eye(7), atol=1e-10)
  t = spectral.trim(b, 4)
  np.testing.assert_allclose(t.spectral_mass, mk[:4, :4], atol=1e-12)
  np.testing.assert_allclose(t.pinv @ phi[:, :4], np.eye(4), atol=1e-12)
  # For an M-orthonormal (LBO) basis Φ⁺ reduces to ΦᵀM.
  v, f = bumpy(1)
  lb = spectral.lbo_basis(v, f, 8)
  np.testing.assert_allclose(lb.pinv, lb.evecs.T * lb.mass[None, :], atol=1e-9)


def _hks_reference(evals, evecs, times):
  return np.stack([sum(np.exp(-lam * t) * evecs[:, k] ** 2 for k, lam in enumerate(evals))
                   for t in times], 1)


def _wks_reference(evals, evecs, n_descr):
  ev = np.abs(evals)
  e_min, e_max = np.log(ev[1]), np.log(ev[-1])
  sigma = 7 * (e_max - e_min) / n_descr
  energies = np.linspace(e_min + 2 * sigma, e_max - 2 * sigma, n_descr)
  keep = ev > 1e-5
  out = np.zeros((evecs.shape[0], n_descr))
  for t, e in enumerate(energies):
    c = np.exp(-(e - np.log(ev[keep])) ** 2 / (2 * sigma ** 2))
    out[:, t] = (evecs[:, keep] ** 2 @ c) / c.sum()
  return out


def test_hks_wks_match_references_and_are_rigid_invariant():
  v, f = bumpy(2)
  rot = Rotation.from_euler('xyz', [1.0, 0.2, -2.1]).as_matrix()
  feats = []
  with jax.enable_x64():
    for verts in (v, v @ rot.T + np.array([1.0, -3.0, 0.5])):
      b = spectral.lbo_basis(verts, f, 30)
      ev, ef, m = jnp.asarray(b.evals), jnp.asarray(b.evecs), jnp.asarray(b.mass)
      hks = np.asarray(descriptors.hks_autoscale(ev, ef, 16))
      wks = np.asarray(descriptors.wks_autoscale(ev, ef, m, n_descr=20, n_eig=30))
      feats.append((hks, wks))
  np.testing.assert_allclose(hks, _hks_reference(b.evals, b.evecs, np.logspace(-2, 0, 16)),
                             rtol=1e-10)
  ref = _wks_reference(b.evals, b.evecs, 20)
  ref /= np.sqrt(np.sum(b.mass[:, None] * ref ** 2, 0))
  np.testing.assert_allclose(wks, ref, rtol=1e-10)
  np.testing.assert_allclose(np.sum(b.mass[:, None] * wks ** 2, 0), 1.0, rtol=1e-10)
  (h0, w0), (h1, w1) = feats
  np.testing.assert_allclose(h1, h0, rtol=1e-7, atol=1e-9 * np.abs(h0).max())
  np.testing.assert_allclose(w1, w0, rtol=1e-7, atol=1e-9 * np.abs(w0).max())
  # ...and they are informative: not constant over the shape.
  assert np.std(w0[:, 10]) > 0.05 * np.mean(np.abs(w0[:, 10]))
