"""Generalized sparse eigensolvers against dense scipy references on a real cloud."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg
import scipy.sparse as sp

from jaxvision.data import meshes
from jaxvision.geometry import eigensolvers
from jaxvision.geometry import graphs

RODENT = 'locomotion/walkers/assets/rodent_walker_skin.skn'


@pytest.fixture(scope='module')
def cloud():
  pts = meshes.read_point_cloud(meshes.packaged_file('dm_control', RODENT))
  return pts[np.random.default_rng(0).choice(len(pts), 600, replace=False)]


def _gap_k(vals, lo=5, hi=16):
  gaps = vals[lo + 1:hi + 1] / vals[lo:hi]
  return lo + int(np.argmax(gaps)) + 1   # k eigenpairs up to the biggest relative gap


@pytest.mark.parametrize('solver', ['eigsh', 'lobpcg', 'dense'])
def test_generalized_eigenpairs_satisfy_equation_and_span_reference(cloud, solver):
  w = graphs.knn_graph(cloud, 10)
  lap, b = graphs.laplacian(w), graphs.degrees(w)
  ref_vals, ref_vecs = scipy.linalg.eigh(lap.toarray(), np.diag(b))
  k = _gap_k(ref_vals)
  vals, vecs = eigensolvers.smallest_eigenpairs(lap, b, k, solver=solver)
  tol = 2e-3 if solver == 'dense' else 1e-6  # the JAX path runs in float32
  np.testing.assert_allclose(vals, ref_vals[:k], atol=tol)
  resid = lap @ vecs - (b[:, None] * vecs) * vals[None, :]
  assert np.max(np.abs(resid)) < 50 * tol
  np.testing.assert_allclose(vecs.T @ (b[:, None] * vecs), np.eye(k), atol=50 * tol)
  # Same subspace as the dense float64 reference: all principal cosines ~ 1.
  qa, _ = np.linalg.qr(np.sqrt(b)[:, None] * vecs)
  qb, _ = np.linalg.qr(np.sqrt(b)[:, None] * ref_vecs[:, :k])
  cos = np.linalg.svd(qa.T @ qb, compute_uv=False)
  assert cos.min() > 1 - 10 * tol
  # Sign rule: the largest-magnitude entry of each eigenvector is positive.
  assert np.all(vecs[np.argmax(np.abs(vecs), 0), np.arange(k)] > 0)


def test_sign_flip_rule():
  v = np.array([[1.0, -3.0], [-2.0, 1.0], [0.5, 2.0]])
  np.testing.assert_array_equal(eigensolvers.sign_flip(v), [[-1.0, 3.0], [2.0, -1.0], [-0.5, -2.0]])


def test_solver_rejects_bad_mass(cloud):
  w = graphs.knn_graph(cloud, 10)
  with pytest.raises(ValueError, match='positive'):
    eigensolvers.smallest_eigenpairs(graphs.laplacian(w), np.zeros(w.shape[0]), 3)
  with pytest.raises(ValueError, match='eigen solver'):
    eigensolvers.smallest_eigenpairs(graphs.laplacian(w), graphs.degrees(w), 3, solver='amg')
  assert sp.issparse(w)
