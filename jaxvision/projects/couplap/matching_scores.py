"""Scores that compare two (registered) point clouds or their eigenmaps.

Coupled Laplacian (Bastico et al., CVPR 2024), Sec. 4.1 (anomaly localisation) and
Sec. 4.2 (bone side estimation), upstream `model/ad.py`, `model/bse.py`,
`manifold/distances.py`, `manifold/utils.py::compare_signatures`:

- `cosine_distance_rows`: point-wise `1 - <a_i, b_i> / (|a_i| |b_i|)` between the
  eigenmap rows of each cross point and its nearest neighbour (the AD score);
- `grassmann_distance`: `‖sqrt(1 - σ²)‖₂`, σ the cosines of the principal angles between
  the column spaces (columns L2-normalised, then QR); 0 for the same subspace, √k for
  mutually orthogonal k-dimensional ones.  Upstream does not clip σ, so σ > 1 by
  round-off gives NaN (and BSE then answers "opposite"); `clip=True` clips to [0, 1];
- baselines: Euclidean nearest-neighbour distance (normalised by its max) and eigenmaps of independent graphs aligned by histogram signatures
  (Bhattacharyya distance, sign chosen per pair, Hungarian matching).  The generic
  Chamfer / Hausdorff baselines live in `jaxvision.geometry.distances`, FPFH in
  `jaxvision.geometry.fpfh`.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from scipy.optimize import linear_sum_assignment
from scipy.spatial import cKDTree


@jax.jit
def _cosine_rows(a, b):
  num = jnp.sum(a * b, axis=1)
  na, nb = jnp.linalg.norm(a, axis=1), jnp.linalg.norm(b, axis=1)
  sim = jnp.where((na > 0) & (nb > 0), num / jnp.maximum(na * nb, 1e-30), 0.0)
  return jnp.clip(1.0 - sim, 0.0, 2.0)


def cosine_distance_rows(a, b) -> np.ndarray:
  """Row-wise cosine distance (scikit-learn's `cosine_distances(a, b).diagonal()`)."""
  a, b = np.asarray(a), np.asarray(b)
  if a.shape != b.shape or a.ndim != 2:
    raise ValueError(f'embeddings must be two (m, d) arrays of equal shape, got {a.shape}, {b.shape}')
  return np.asarray(_cosine_rows(jnp.asarray(a), jnp.asarray(b)), np.float64)


def grassmann_distance(a, b, *, clip: bool = False) -> float:
  """Grassmann distance between the column spaces of `a` and `b` (rows: points)."""
  a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
  if a.ndim != 2 or a.shape != b.shape:
    raise ValueError(f'need two (m, k) matrices of equal shape, got {a.shape} and {b.shape}')
  if a.shape[0] < a.shape[1]:
    raise ValueError(f'{a.shape[0]} rows cannot span {a.shape[1]} dimensions')
  qa, _ = np.linalg.qr(a / np.linalg.norm(a, axis=0))
  qb, _ = np.linalg.qr(b / np.linalg.norm(b, axis=0))
  sigma = np.linalg.svd(qa.T @ qb, compute_uv=False)
  if clip:
    sigma = np.clip(sigma, 0.0, 1.0)
  with np.errstate(invalid='ignore'):
    return float(np.linalg.norm(np.sqrt(1.0 - sigma ** 2)))


def same_side(d_source: float, d_mirrored: float) -> bool:
  """BSE decision: same side iff d(target, source) <= d(target, mirror); NaN -> False."""
  return bool(d_source <= d_mirrored)


def euclidean_nn_score(source, target, cross_source, cross_target) -> np.ndarray:
  """Upstream 'Euclidean': distance of each cross target point to the nearest of the
  cross source points, divided by the largest such distance."""
  src = np.asarray(source)[np.asarray(cross_source)]
  dist, _ = cKDTree(src).query(np.asarray(target)[np.asarray(cross_target)])
  dmax = np.max(dist) if dist.size else 0.0
  return dist / dmax if dmax > 0 else np.zeros_like(dist)


def bhattacharyya_distance(h1, h2) -> float:
  h1 = np.asarray(h1, np.float64)
  h2 = np.asarray(h2, np.float64)
  if h1.shape != h2.shape:
    raise ValueError('histograms must have the same number of bins')
  coeff = np.sum(np.sqrt(h1 / h1.sum() * h2 / h2.sum()))
  with np.errstate(divide='ignore'):
    return float(-np.log(coeff))


def align_by_histograms(maps_a, maps_b, bins: int = 200) -> np.ndarray:
  """Reorders and re-signs the columns of `maps_b` to match `maps_a` ("Hist" baseline).

  Each pair of columns is compared by the Bhattacharyya distance of their value
  histograms (each on its own range, `bins` bins), with `b` or `-b`, whichever is
  closer; the Hungarian algorithm then assigns one column of b to each column of a.
  """
  a, b = np.asarray(maps_a), np.asarray(maps_b)
  if a.shape[1] != b.shape[1]:
    raise ValueError(f'eigenmaps must have the same count, got {a.shape[1]} and {b.shape[1]}')
  k = a.shape[1]
  ha = [np.histogram(a[:, i], bins)[0] for i in range(k)]
  hb = [np.histogram(b[:, j], bins)[0] for j in range(k)]
  hbn = [np.histogram(-b[:, j], bins)[0] for j in range(k)]
  cost = np.ones((k, k))
  sign = np.ones((k, k))
  for i in range(k):
    for j in range(k):
      d_pos, d_neg = bhattacharyya_distance(ha[i], hb[j]), bhattacharyya_distance(ha[i], hbn[j])
      cost[i, j] = min(d_pos, d_neg)
      sign[i, j] = 1.0 if d_pos < d_neg else -1.0
  rows, cols = linear_sum_assignment(cost)
  out = np.empty_like(b)
  out[:, rows] = b[:, cols] * sign[rows, cols][None, :]
  return out
