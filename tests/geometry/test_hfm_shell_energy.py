"""Thin-shell energy and its rest Hessian against closed forms and finite differences."""

import jax
import jax.numpy as jnp
import numpy as np
from scipy.spatial.transform import Rotation

from jaxvision.geometry import mesh_operators as mo
from jaxvision.geometry import primitives
from jaxvision.geometry import shell_energy as se


def _bumpy_sphere(subdivisions=1, seed=0):
  v, f = primitives.icosphere(subdivisions)
  r = 1.0 + 0.15 * np.random.default_rng(seed).uniform(-1, 1, len(v))
  return v * r[:, None], f


def _hinge(fold=0.0):
  """Edge 0–1 on the x axis; k = 2 in face (0, 1, 2), l = 3 in face (1, 0, 3) folded by `fold`."""
  v = np.array([[0, 0, 0], [1, 0, 0], [0.3, 1, 0], [0.6, -0.8 * np.cos(fold), -0.8 * np.sin(fold)]])
  return v, np.array([[0, 1, 2], [1, 0, 3]])


def _membrane_closed_form(area_rest, tr, det, mu=1.0, lam=1.0):
  return area_rest * (mu / 2 * tr + lam / 4 * det - (mu / 2 + lam / 4) * np.log(det) - mu - lam / 4)


def test_membrane_closed_forms_on_a_triangle():
  v = np.array([[0, 0, 0], [1.3, 0, 0], [0.4, 0.9, 0]])
  f = np.array([[0, 1, 2]])
  area = mo.total_area(v, f)
  for s in (0.5, 1.7):            # uniform scaling: G = s² I
    e = se.shell_energy_terms(s * v, v, f)
    np.testing.assert_allclose(e['membrane'], _membrane_closed_form(area, 2 * s ** 2, s ** 4),
                               rtol=1e-12)
  for a in (0.6, 2.0):            # stretch along x: G = diag(a², 1)
    e = se.shell_energy_terms(v * np.array([a, 1, 1]), v, f)
    np.testing.assert_allclose(e['membrane'], _membrane_closed_form(area, a ** 2 + 1, a ** 2),
                               rtol=1e-12)


def test_bending_closed_form_on_a_two_triangle_hinge():
  # 3 (θ − θ̄)² |ē|² / (Ā_k + Ā_l) with |ē| = 1, Ā_k = 0.5, Ā_l = 0.4 (undeformed).
  for rest_fold, fold in ((0.0, 0.3), (0.0, -1.1), (0.5, 1.2), (-0.4, 0.9)):
    v_rest, f = _hinge(rest_fold)
    v_def, _ = _hinge(fold)
    e = se.shell_energy_terms(v_def, v_rest, f)
    np.testing.assert_allclose(e['bending'], 3 * (fold - rest_fold) ** 2 / 0.9, rtol=1e-12)
    # Folding moves one triangle rigidly: no membrane strain.
    np.testing.assert_allclose(e['membrane'], 0.0, atol=1e-14)


def test_energy_and_gradient_vanish_at_rest_and_under_rigid_motion():
  v, f = _bumpy_sphere()
  hinges = mo.interior_hinges(f)
  rot = Rotation.from_euler('xyz', [0.3, -1.2, 2.0]).as_matrix()
  with jax.enable_x64():
    energy = lambda x: se.shell_energy(x, jnp.asarray(v), f, hinges, 0.5)
    assert abs(float(energy(jnp.asarray(v)))) < 1e-13
    assert abs(float(energy(jnp.asarray(v @ rot.T + 3.0)))) < 1e-11
    grad = jax.grad(energy)(jnp.asarray(v))
    assert float(jnp.max(jnp.abs(grad))) < 1e-12
    # ...and it is a real energy: a non-rigid deformation costs something.
    assert float(energy(jnp.asarray(v * np.array([1.1, 1.0, 1.0])))) > 1e-4


def test_hessian_matches_finite_differences_of_the_gradient():
  v, f = _bumpy_sphere(seed=1)
  n = len(v)
  hinges = mo.interior_hinges(f)
  h_mem = se.shell_hessian(v, f, bending_weight=0.0).toarray()
  h_bend = se.shell_hessian(v, f, bending_weight=1.0).toarray() - h_mem
  step = 1e-5
  with jax.enable_x64():
    xr = jnp.asarray(v)

    @jax.jit
    def fd_columns(w):
      grad = jax.grad(lambda x: se.shell_energy(x, xr, f, hinges, w))
      def column(d):
        # Coordinate-blocked DOF d = c * n + vertex.
        e = jnp.zeros(3 * n).at[d].set(step).reshape(3, n).T
        return ((grad(xr + e) - grad(xr - e)) / (2 * step)).T.reshape(-1)
      return jax.vmap(column)(jnp.arange(3 * n)).T

    fd_mem = np.asarray(fd_columns(0.0))
    fd_bend = np.asarray(fd_columns(1.0)) - fd_mem
  for ours, fd in ((h_mem, fd_mem), (h_bend, fd_bend)):
    assert np.abs(fd).max() > 1e-3
    np.testing.assert_allclose(ours, fd, atol=1e-6 * np.abs(fd).max())


def test_hinge_hessian_at_rest_is_the_rank_one_closed_form():
  v, _ = _hinge(0.7)
  with jax.enable_x64():
    x = jnp.asarray(v)
    hess = np.asarray(jax.hessian(se.bending_hinge)(x, x)).reshape(12, 12)
    g = np.asarray(jax.grad(se.dihedral_angle)(x)).reshape(12)
  np.testing.assert_allclose(hess, 2 * 3 * 1.0 / 0.9 * np.outer(g, g), atol=1e-12)


def test_null_space_is_exactly_the_six_rigid_motions_in_blocked_dof_order():
  v, f = _bumpy_sphere(seed=2)
  n = len(v)
  hess = se.shell_hessian(v, f, 1e-2)
  mass3 = np.tile(mo.voronoi_mass(v, f), 3)
  w = 1 / np.sqrt(mass3)
  vals = np.linalg.eigvalsh(hess.toarray() * w[:, None] * w[None, :])
  assert np.all(np.abs(vals[:6]) < 1e-9 * vals[-1]) and vals[6] > 1e-4 * vals[-1]
  zeros, ones = np.zeros(n), np.ones(n)
  x, y, z = v.T
  rigid = [np.concatenate(b) for b in ((ones, zeros, zeros), (zeros, ones, zeros),
                                       (zeros, zeros, ones), (-y, x, zeros), (zeros, -z, y),
                                       (z, zeros, -x))]
  scale = abs(hess).max()
  for r in rigid:
    assert np.linalg.norm(hess @ r) < 1e-10 * np.linalg.norm(r) * scale
  interleaved = np.tile([1.0, 0.0, 0.0], n)    # a translation in xyz-interleaved order
  assert np.linalg.norm(hess @ interleaved) > 1e-2 * np.linalg.norm(interleaved) * scale
