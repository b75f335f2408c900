"""Neighbourhood graphs of point clouds: kNN / radius graphs, Gaussian weights, components.

Coupled Laplacian (Bastico et al., CVPR 2024), Sec. 3.1 and upstream
`manifold/utils.py::adjacency_matrix` (facts, not code): a directed kNN graph without
self loops (k = 10), symmetrised as `A = (D + Dᵀ) / (C + Cᵀ)` entry-wise — an edge keeps
its length, averaged if both directions exist — then Gaussian weights
`w_ij = exp(-d_ij² / max_edges(d)²)`, the width being the longest edge of that graph.

Neighbour ties (`knn` backend): equal distances make "the k nearest" ambiguous, and
the choice changes graph entries (on a real scan two points with equidistant 10th/11th
neighbours changed 4 entries).  `'sklearn'` (default) asks scikit-learn's
`NearestNeighbors` exactly as upstream's `kneighbors_graph(include_self=False)` does
(KD-tree, leaf size 30): deterministic, and the same neighbours as upstream, ties
included.  scikit-learn's KD-tree keeps, among equidistant candidates, the ones its
traversal meets first (no simple index rule: measured on a lattice, neither "lower
index first" nor its brute/ball-tree algorithms agree with it), so only scikit-learn
itself reproduces it.  Where a duplicate hides the point itself from its k+1 list,
scikit-learn drops the FIRST listed neighbour.  `'ckdtree'` is scipy's cKDTree (the
earlier behaviour here: ties broken by scipy's traversal; a hidden self drops the last).

Everything here is float64 NumPy/SciPy (sparse CSR); the spectral code builds on it.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from scipy.sparse import csgraph
from scipy.spatial import cKDTree
from sklearn.neighbors import NearestNeighbors

WEIGHT_MODES = ('gaussian', 'distance', 'connectivity')
KNN_BACKENDS = ('sklearn', 'ckdtree')


def check_points(points, name: str = 'points', min_points: int = 2) -> np.ndarray:
  """Returns `points` as a float64 (n, d) array; clear errors for bad input."""
  pts = np.asarray(points, dtype=np.float64)
  if pts.ndim != 2 or pts.shape[1] < 1:
    raise ValueError(f'{name} must be an (n, d) array of coordinates, got shape {pts.shape}')
  if pts.shape[0] < min_points:
    raise ValueError(f'{name} has {pts.shape[0]} points; at least {min_points} are needed')
  if not np.all(np.isfinite(pts)):
    bad = int(np.sum(~np.all(np.isfinite(pts), axis=1)))
    raise ValueError(f'{name} has {bad} point(s) with NaN or infinite coordinates')
  return pts


def _symmetric_distances(rows: np.ndarray, cols: np.ndarray, dist: np.ndarray,
                         n: int) -> sp.csr_matrix:
  """Directed edges -> symmetric lengths, averaged where both directions exist."""
  r = np.concatenate([rows, cols])
  c = np.concatenate([cols, rows])
  # Both sums share one (canonical, duplicates summed) pattern; explicit zero lengths
  # keep their slot, unlike upstream's `.nonzero()`, which would drop and misalign them.
  d_sum = sp.csr_matrix((np.concatenate([dist, dist]), (r, c)), shape=(n, n))
  c_sum = sp.csr_matrix((np.ones(2 * len(dist)), (r, c)), shape=(n, n))
  d_sum.sum_duplicates()
  c_sum.sum_duplicates()
  lengths = d_sum.data / c_sum.data
  return sp.csr_matrix((lengths, c_sum.indices.copy(), c_sum.indptr.copy()), shape=(n, n))


def _weights(lengths: sp.csr_matrix, mode: str) -> sp.csr_matrix:
  if mode not in WEIGHT_MODES:
    raise ValueError(f'weight mode {mode!r}; expected one of {WEIGHT_MODES}')
  out = lengths.copy()
  if mode == 'distance':
    return out
  if mode == 'connectivity':
    out.data[:] = 1.0
    return out
  return gaussian_weights(out)


def gaussian_weights(lengths: sp.csr_matrix) -> sp.csr_matrix:
  """`exp(-d² / max(d)²)` on the stored edges (σ² = the largest squared edge length)."""
  out = lengths.copy().tocsr()
  if out.nnz == 0:
    raise ValueError('the graph has no edges')
  dmax = float(np.max(out.data))
  if dmax <= 0.0:
    raise ValueError('every edge has length 0 (all points coincide): Gaussian weights '
                     'exp(-d²/max d²) are undefined')
  out.data = np.exp(-(out.data ** 2) / dmax ** 2)
  return out


def knn_edges(points, k: int = 10, knn: str = 'sklearn') -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """Directed kNN edges without self loops: (rows, cols, lengths), k per point.

  Like scikit-learn's `kneighbors_graph(include_self=False)`: a point's own index is
  excluded even when another point sits at the same place.  `knn` picks the tie rule
  (module docstring).
  """
  pts = check_points(points)
  n = pts.shape[0]
  if not 1 <= k < n:
    raise ValueError(f'k={k} neighbours needs 1 <= k < number of points ({n})')
  if knn not in KNN_BACKENDS:
    raise ValueError(f'knn backend {knn!r}; expected one of {KNN_BACKENDS}')
  if knn == 'sklearn':
    # X=None: scikit-learn queries the fitted points and removes each one itself.
    dist, idx = NearestNeighbors(n_neighbors=k).fit(pts).kneighbors()
    return np.repeat(np.arange(n), k), idx.ravel(), dist.ravel()
  dist, idx = cKDTree(pts).query(pts, k=k + 1)
  is_self = idx == np.arange(n)[:, None]
  # Drop the point itself; where a duplicate hid it from the k+1 list, drop the last.
  no_self = ~is_self.any(axis=1)
  is_self[no_self, -1] = True
  keep = ~is_self
  rows = np.repeat(np.arange(n), k)
  return rows, idx[keep].reshape(n, k).ravel(), dist[keep].reshape(n, k).ravel()


def knn_graph(points, k: int = 10, mode: str = 'gaussian', knn: str = 'sklearn') -> sp.csr_matrix:
  """Symmetric kNN adjacency (upstream `adjacency_matrix(method='knn', mode=...)`)."""
  pts = check_points(points)
  rows, cols, dist = knn_edges(pts, k, knn)
  return _weights(_symmetric_distances(rows, cols, dist, pts.shape[0]), mode)


def radius_graph(points, radius: float, mode: str = 'gaussian') -> sp.csr_matrix:
  """Symmetric adjacency linking every pair closer than `radius` (inclusive)."""
  pts = check_points(points)
  if not radius > 0:
    raise ValueError(f'radius must be > 0, got {radius}')
  pairs = cKDTree(pts).query_pairs(radius, output_type='ndarray')
  if len(pairs) == 0:
    raise ValueError(f'no two points are within radius {radius}')
  i, j = pairs[:, 0], pairs[:, 1]
  dist = np.linalg.norm(pts[i] - pts[j], axis=1)
  rows, cols = np.concatenate([i, j]), np.concatenate([j, i])
  return _weights(_symmetric_distances(rows, cols, np.concatenate([dist, dist]),
                                       pts.shape[0]), mode)


def degrees(adjacency: sp.spmatrix) -> np.ndarray:
  return np.asarray(adjacency.sum(axis=1)).ravel()


def laplacian(adjacency: sp.spmatrix) -> sp.csr_matrix:
  """Combinatorial Laplacian `L = D - W` (self loops ignored, as csgraph.laplacian)."""
  w = sp.csr_matrix(adjacency, dtype=np.float64)
  w = w - sp.diags(w.diagonal())
  return (sp.diags(degrees(w)) - w).tocsr()


def largest_connected_component(adjacency: sp.spmatrix) -> np.ndarray:
  """Sorted indices of the nodes of the largest (weakly) connected component."""
  n_comp, labels = csgraph.connected_components(adjacency, directed=False)
  if n_comp == 1:
    return np.arange(adjacency.shape[0])
  biggest = np.argmax(np.bincount(labels))
  return np.flatnonzero(labels == biggest)


def restrict(adjacency: sp.spmatrix, nodes: np.ndarray) -> sp.csr_matrix:
  """The induced subgraph on `nodes` (kept in the given order)."""
  a = sp.csr_matrix(adjacency)
  return a[nodes][:, nodes].tocsr()
