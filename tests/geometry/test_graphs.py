"""kNN/radius graphs, Laplacians and eigensolvers against independent constructions."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.sparse import csgraph
from sklearn.neighbors import kneighbors_graph
from sklearn.neighbors import radius_neighbors_graph

from jaxvision.data import meshes
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


def _lattice(seed):
  """A 6×6×4 integer lattice, shuffled: every point has many equidistant neighbours."""
  g = np.stack(np.meshgrid(np.arange(6), np.arange(6), np.arange(4), indexing='ij'), -1)
  g = g.reshape(-1, 3).astype(np.float64)
  return g[np.random.default_rng(seed).permutation(len(g))]


@pytest.mark.parametrize('seed', [0, 1])
def test_knn_exact_ties_follow_sklearn_kneighbors_graph(seed):
  pts = _lattice(seed)
  for k in (7, 10):
    ref = kneighbors_graph(pts, k, mode='connectivity', include_self=False)
    rows, cols, dist = graphs.knn_edges(pts, k)
    got = sp.csr_matrix((np.ones_like(dist), (rows, cols)), shape=ref.shape)
    assert (got != ref).nnz == 0   # the same neighbour SETS, ties included
    np.testing.assert_allclose(dist, np.linalg.norm(pts[rows] - pts[cols], axis=1))
    ref_w = _reference_gaussian(kneighbors_graph(pts, k, mode='distance'), ref)
    np.testing.assert_allclose(graphs.knn_graph(pts, k).toarray(), ref_w, atol=1e-15)
  # Deterministic: the same input gives the same graph.
  a, b = graphs.knn_graph(pts, 10), graphs.knn_graph(pts.copy(), 10)
  assert (a != b).nnz == 0


def test_knn_ckdtree_backend_breaks_ties_differently():
  """The check above can fail: scipy's cKDTree picks other equidistant neighbours."""
  pts = _lattice(0)
  ref = kneighbors_graph(pts, 10, mode='connectivity', include_self=False)
  rows, cols, _ = graphs.knn_edges(pts, 10, knn='ckdtree')
  got = sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=ref.shape)
  assert (got != ref).nnz > 0
  with pytest.raises(ValueError, match='knn backend'):
    graphs.knn_edges(pts, 10, knn='faiss')


def test_knn_duplicate_points_drop_like_sklearn():
  """More duplicates than neighbours: the point itself is hidden from its own list."""
  rng = np.random.default_rng(3)
  pts = np.concatenate([np.zeros((4, 3)), rng.normal(size=(20, 3))])
  ref = kneighbors_graph(pts, 2, mode='connectivity', include_self=False)
  rows, cols, _ = graphs.knn_edges(pts, 2)
  got = sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=ref.shape)
  assert (got != ref).nnz == 0
  assert not np.any(rows == cols)
