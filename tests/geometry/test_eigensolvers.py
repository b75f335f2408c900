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


@pytest.mark.filterwarnings('ignore::UserWarning')
@pytest.mark.parametrize('k', [41, 150])   # 150: below 5k nodes scikit-learn uses ARPACK
def test_upstream_solver_is_sklearn_amg_spectral_embedding(cloud, k):
  """solver='upstream' = scikit-learn's amg path (20 LOBPCG iterations), not converged."""
  pytest.importorskip('pyamg')
  from sklearn.manifold import spectral_embedding  # pylint: disable=g-import-not-at-top
  w = graphs.knn_graph(cloud, 10)
  np.random.seed(42)   # pyamg's draw (upstream leaves the global RNG unseeded)
  ref = spectral_embedding(w, n_components=k - 1, eigen_solver='amg', random_state=42,
                           norm_laplacian=False, drop_first=True)
  ones = np.ones(w.shape[0])   # scikit-learn has no mass matrix: B = I
  _, vecs = eigensolvers.smallest_eigenpairs(graphs.laplacian(w), ones, k, solver='upstream')
  np.testing.assert_allclose(vecs[:, 1:], ref, atol=1e-8)
  # The caller's seed does not matter (upstream fixes random_state=42), and the
  # global numpy RNG is left as it was.
  state = np.random.get_state()[1].copy()
  _, again = eigensolvers.smallest_eigenpairs(graphs.laplacian(w), ones, k, solver='upstream',
                                              seed=7)
  np.testing.assert_array_equal(again, vecs)
  np.testing.assert_array_equal(np.random.get_state()[1], state)


@pytest.mark.filterwarnings('ignore::UserWarning')
def test_upstream_solver_with_mass_solves_the_generalized_problem(cloud):
  pytest.importorskip('pyamg')
  w = graphs.knn_graph(cloud, 10)
  lap, b = graphs.laplacian(w), graphs.degrees(w)
  ref_vals, ref_vecs = scipy.linalg.eigh(lap.toarray(), np.diag(b))
  k = _gap_k(ref_vals)
  vals, vecs = eigensolvers.smallest_eigenpairs(lap, b, k, solver='upstream')
  np.testing.assert_allclose(vals, ref_vals[:k], atol=1e-6)
  qa, _ = np.linalg.qr(np.sqrt(b)[:, None] * vecs)
  qb, _ = np.linalg.qr(np.sqrt(b)[:, None] * ref_vecs[:, :k])
  assert np.linalg.svd(qa.T @ qb, compute_uv=False).min() > 1 - 1e-5
  # Fewer iterations than upstream's 20 leave a visibly different basis.
  _, few = eigensolvers.upstream_amg_lobpcg(lap, b, k, maxiter=2)
  assert np.abs(eigensolvers.sign_flip(few) - vecs).max() > 1e-4
