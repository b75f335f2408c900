"""kNN/radius graphs, Laplacians and eigensolvers against independent constructions."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg
import scipy.sparse as sp
from scipy.sparse import csgraph
from sklearn.neighbors import kneighbors_graph
from sklearn.neighbors import radius_neighbors_graph

from jaxvision.data import meshes
from jaxvision.geometry import eigensolvers
from jaxvision.geometry import graphs

RODENT = 'locomotion/walkers/assets/rodent_walker_skin.skn'


@pytest.fixture(scope='module')
def cloud():
  pts = meshes.read_point_cloud(meshes.packaged_file('dm_control', RODENT))
  return pts[np.random.default_rng(0).choice(len(pts), 600, replace=False)]


def _reference_gaussian(adj_dist, adj_conn):
  """Upstream's recipe with dense arrays: A = (D + Dᵀ)/(C + Cᵀ), exp(-A²/max²)."""
  d = (adj_dist + adj_dist.T).toarray()
  c = (adj_conn + adj_conn.T).toarray()
  a = np.where(c > 0, d / np.where(c > 0, c, 1), 0.0)
  return np.where(c > 0, np.exp(-a ** 2 / a.max() ** 2), 0.0)


def test_knn_gaussian_weights_match_sklearn_construction(cloud):
  ref = _reference_gaussian(kneighbors_graph(cloud, 10, mode='distance'),
                            kneighbors_graph(cloud, 10, mode='connectivity'))
  got = graphs.knn_graph(cloud, 10).toarray()
  np.testing.assert_allclose(got, ref, rtol=1e-12, atol=1e-14)
  assert np.allclose(got, got.T)
  # Every point has at least its own 10 neighbours; the weight range is [e^-1, 1].
  assert np.all((got > 0).sum(1) >= 10)
  assert got[got > 0].min() >= np.exp(-1) - 1e-12


def test_radius_graph_matches_sklearn(cloud):
  r = 0.012
  ref_d = radius_neighbors_graph(cloud, r, mode='distance').toarray()
  got = graphs.radius_graph(cloud, r, mode='distance').toarray()
  np.testing.assert_allclose(got, ref_d, atol=1e-12)
  gauss = graphs.radius_graph(cloud, r).toarray()
  np.testing.assert_allclose(gauss[ref_d > 0], np.exp(-ref_d[ref_d > 0] ** 2 / ref_d.max() ** 2))


def test_laplacian_matches_csgraph(cloud):
  w = graphs.knn_graph(cloud, 10)
  ref = csgraph.laplacian(w.toarray(), normed=False)
  np.testing.assert_allclose(graphs.laplacian(w).toarray(), ref, atol=1e-12)
  np.testing.assert_allclose(graphs.degrees(w), w.toarray().sum(1))


def test_largest_connected_component_drops_far_island(cloud):
  island = cloud[:20] + 100.0
  pts = np.concatenate([cloud, island])
  keep = graphs.largest_connected_component(graphs.knn_graph(pts, 10))
  np.testing.assert_array_equal(keep, np.arange(len(cloud)))


def test_bad_input_is_named():
  with pytest.raises(ValueError, match='NaN'):
    graphs.knn_graph(np.array([[0, 0, 0], [1, np.nan, 0], [2, 0, 0]]), 1)
  with pytest.raises(ValueError, match='shape'):
    graphs.knn_graph(np.zeros(5), 2)
  with pytest.raises(ValueError, match='k=10'):
    graphs.knn_graph(np.random.default_rng(0).normal(size=(5, 3)), 10)
  with pytest.raises(ValueError, match='coincide'):
    graphs.knn_graph(np.zeros((5, 3)), 2)


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
