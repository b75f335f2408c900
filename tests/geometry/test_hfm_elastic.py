"""Elastic basis: generalized eigenpairs, rigid modes dropped, signs, normal projection."""

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from jaxvision.geometry import elastic
from jaxvision.geometry import mesh_operators as mo
from jaxvision.geometry import primitives
from jaxvision.geometry import shell_energy as se


def _mesh(seed=0):
  v, f = primitives.icosphere(2)
  rng = np.random.default_rng(seed)
  v = v * (1.0 + 0.3 * v[:, :1] ** 2 + 0.05 * rng.uniform(-1, 1, (len(v), 1)))
  return mo.normalize_area(v, f)[0], f


@pytest.fixture(scope='module')
def mesh_and_basis():
  v, f = _mesh()
  return v, f, elastic.elastic_basis(v, f, k=12, bending_weight=1e-2)


def test_eigenpairs_satisfy_the_generalized_equation(mesh_and_basis):
  v, f, b = mesh_and_basis
  n = len(v)
  hess = se.shell_hessian(v, f, 1e-2) + 1e-6 * np.eye(3 * n)
  mass3 = np.tile(mo.voronoi_mass(v, f), 3)
  np.testing.assert_allclose(b.mass, mass3[:n])
  resid = hess @ b.vectors - mass3[:, None] * b.vectors * b.evals[None, :]
  assert np.abs(resid).max() < 1e-8 * np.abs(hess).max()
  np.testing.assert_allclose(b.vectors.T @ (mass3[:, None] * b.vectors), np.eye(12), atol=1e-10)
  # Rigid modes are gone: what is left is M₃-orthogonal to translations and rotations (up to
  # the mixing that the +εI regulariser, not a multiple of M₃, causes: O(ε/λ)).
  x, y, z = v.T
  zeros, ones = np.zeros(n), np.ones(n)
  rigid = np.stack([np.concatenate(c) for c in ((ones, zeros, zeros), (zeros, ones, zeros),
                                                (zeros, zeros, ones), (-y, x, zeros))], 1)
  assert np.abs(rigid.T @ (mass3[:, None] * b.vectors)).max() < 1e-5
  assert np.all(np.diff(b.evals) >= 0) and b.evals[0] > 1e-3
  # Sign rule: the first entry of every vector mode is non-negative.
  assert np.all(b.vectors[0] >= 0)


def test_projection_on_vertex_normals(mesh_and_basis):
  v, f, b = mesh_and_basis
  n = len(v)
  normals = mo.vertex_normals(v, f)
  for j in range(0, 12, 5):
    field = b.vectors[:, j].reshape(3, n).T           # (n, 3) displacement field
    np.testing.assert_allclose(b.evecs[:, j], np.sum(field * normals, axis=1), atol=1e-13)


def test_sparse_shift_invert_path_matches_dense(mesh_and_basis):
  v, f, b = mesh_and_basis
  sparse = elastic.elastic_basis(v, f, k=12, bending_weight=1e-2, dense_max_dofs=0)
  # Shift-invert at σ = 0 factorises H + εI (condition ~1/ε): ~1e-8 relative accuracy.
  np.testing.assert_allclose(sparse.evals, b.evals, rtol=1e-6)
  # Same subspace (eigenvalues may be degenerate): projector difference in the M₃ metric.
  mass3 = np.tile(b.mass, 3)
  p1 = b.vectors @ b.vectors.T
  p2 = sparse.vectors @ sparse.vectors.T
  assert np.abs((p1 - p2) * mass3[None, :]).max() < 1e-6


def test_rigid_motion_invariance_and_sign_quirk():
  v, f = _mesh(seed=3)
  rot = Rotation.from_euler('zyx', [0.4, 1.0, -0.7]).as_matrix()
  b = elastic.elastic_basis(v, f, k=8)
  br = elastic.elastic_basis(v @ rot.T + 2.0, f, k=8, negate_flipped_eigenvalues=True)
  np.testing.assert_allclose(np.abs(br.evals), b.evals, rtol=1e-8)
  raw = elastic.elastic_basis(v @ rot.T + 2.0, f, k=8)
  # The quirk (upstream vals[ind] *= -1) only changes signs of eigenvalues, not the modes.
  np.testing.assert_allclose(np.abs(br.evals), raw.evals)
  np.testing.assert_allclose(br.evecs, raw.evecs)
  assert np.all(raw.evals > 0)
  # Normal-projected functions of the moved mesh equal the original up to sign (simple spectrum).
  simple = np.ones(8, bool)
  gaps = np.diff(b.evals) / b.evals[1:]
  simple[1:] &= gaps > 1e-4
  simple[:-1] &= gaps > 1e-4
  for j in np.flatnonzero(simple):
    s = np.sign(b.evecs[:, j] @ (b.mass * raw.evecs[:, j]))
    np.testing.assert_allclose(s * raw.evecs[:, j], b.evecs[:, j], atol=1e-6)
  assert simple.sum() >= 2


def test_bad_input():
  v, f = primitives.icosahedron()
  with pytest.raises(ValueError, match='k=40 elastic modes'):
    elastic.elastic_basis(v, f, k=40)
  with pytest.raises(ValueError, match='bending_weight'):
    elastic.elastic_basis(v, f, k=3, bending_weight=-1.0)
  with pytest.raises(ValueError, match='belong to no face'):
    elastic.elastic_basis(np.concatenate([v, [[5.0, 5.0, 5.0]]]), f, k=3)
  with pytest.warns(UserWarning, match='2 connected components'):
    elastic.elastic_basis(np.concatenate([v, v + 3.0]), np.concatenate([f, f + 12]), k=3)
