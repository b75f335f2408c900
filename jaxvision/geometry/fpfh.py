"""Fast Point Feature Histograms (FPFH, Rusu et al., ICRA 2009), voxel down-sampling, normals.

Coupled Laplacian (Bastico et al., CVPR 2024), Sec. 4: upstream
`utils/pre_processing.py::preprocess` registers clouds with Open3D's FPFH + RANSAC
(and uses FPFH cosine similarity as a BSE baseline).  The same recipe, written here in
NumPy (facts from Open3D 0.17's documented algorithm, not its code):

- `voxel_down_sample`: the mean of the points in each voxel of a grid whose origin is
  the cloud's minimum corner minus half a voxel (voxels listed in lexicographic order
  of their integer index; Open3D's order is a hash map's);
- `estimate_normals`: the smallest-variance principal axis of the neighbours within
  `radius` (at most `max_nn` nearest).  Open3D leaves the sign as its eigen-solver
  returns it; here each normal points away from the cloud's centroid (deterministic);
- `compute_fpfh`: for each point p and each neighbour q within `radius` (at most
  `max_nn`), the Darboux-frame pair features (α, φ, θ) with the source/target chosen by
  the smaller angle between normal and connecting line; each feature binned into 11
  bins (SPFH, 33 values, weight 100/#neighbours); then
  `FPFH(p) = SPFH(p) + Σ_q SPFH(q)/d²(p, q)`, each 11-bin block of the sum renormalised
  to total 100 (Open3D's weighting: squared distance).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from scipy.spatial import cKDTree

from jaxvision.geometry import graphs

BINS = 11


def voxel_down_sample(points, voxel_size: float) -> np.ndarray:
  """Mean point of every occupied voxel (Open3D's grid origin: min bound - voxel/2)."""
  pts = graphs.check_points(points, 'points', 1)
  if not voxel_size > 0:
    raise ValueError(f'voxel_size must be > 0, got {voxel_size}')
  origin = pts.min(0) - 0.5 * voxel_size
  cell = np.floor((pts - origin) / voxel_size).astype(np.int64)
  _, inverse, counts = np.unique(cell, axis=0, return_inverse=True, return_counts=True)
  sums = np.zeros((len(counts), pts.shape[1]))
  np.add.at(sums, inverse.ravel(), pts)
  return sums / counts[:, None]


def _neighbours(tree: cKDTree, query: np.ndarray, radius: float, max_nn: int):
  """(dist, idx, valid) of up to `max_nn` nearest within `radius` (hybrid search)."""
  k = min(max_nn, tree.n)
  dist, idx = tree.query(query, k=k, distance_upper_bound=radius)
  dist, idx = dist.reshape(len(query), k), idx.reshape(len(query), k)
  valid = np.isfinite(dist)
  return np.where(valid, dist, 0.0), np.where(valid, idx, 0), valid


def estimate_normals(points, radius: float, max_nn: int = 30) -> np.ndarray:
  """Unit normals from local PCA; oriented away from the centroid (module doc)."""
  pts = graphs.check_points(points, 'points', 3)
  _, idx, valid = _neighbours(cKDTree(pts), pts, radius, max_nn)
  w = valid.astype(np.float64)
  cnt = np.maximum(w.sum(1), 1.0)
  nb = pts[idx]
  mean = (nb * w[..., None]).sum(1) / cnt[:, None]
  d = (nb - mean[:, None]) * w[..., None]
  cov = np.einsum('nki,nkj->nij', d, d) / cnt[:, None, None]
  _, vecs = np.linalg.eigh(cov)
  normals = vecs[:, :, 0]
  few = valid.sum(1) < 3     # not enough neighbours for a plane: Open3D leaves (0, 0, 1)
  normals[few] = np.array([0.0, 0.0, 1.0])
  outward = np.sum(normals * (pts - pts.mean(0)), axis=1) < 0
  normals[outward & ~few] *= -1.0
  return normals


def pair_features(p1, n1, p2, n2):
  """Open3D's (f1=α, f2=φ, f3=θ, f4=d) for arrays of point pairs, (..., 4)."""
  dp = p2 - p1
  f4 = np.linalg.norm(dp, axis=-1)
  safe = np.where(f4 > 0, f4, 1.0)
  a1 = np.sum(n1 * dp, -1) / safe
  a2 = np.sum(n2 * dp, -1) / safe
  swap = np.arccos(np.clip(np.abs(a1), 0, 1)) > np.arccos(np.clip(np.abs(a2), 0, 1))
  s = swap[..., None]
  m1, m2 = np.where(s, n2, n1), np.where(s, n1, n2)
  dp = np.where(s, -dp, dp)
  f3 = np.where(swap, -a2, a1)
  v = np.cross(dp, m1)
  vn = np.linalg.norm(v, axis=-1)
  v = v / np.where(vn > 0, vn, 1.0)[..., None]
  w = np.cross(m1, v)
  f2 = np.sum(v * m2, -1)
  f1 = np.arctan2(np.sum(w * m2, -1), np.sum(m1 * m2, -1))
  zero = (f4 == 0) | (vn == 0)
  out = np.stack([f1, f2, f3, f4], -1)
  out[zero] = 0.0
  return out


def _bin(x, lo, hi):
  return np.clip(np.floor(BINS * (x - lo) / (hi - lo)), 0, BINS - 1).astype(np.int64)


def compute_fpfh(points, normals, radius: float, max_nn: int = 100) -> np.ndarray:
  """(n, 33) FPFH descriptors (module doc)."""
  pts = graphs.check_points(points, 'points', 2)
  nrm = np.asarray(normals, np.float64)
  if nrm.shape != pts.shape:
    raise ValueError(f'normals have shape {nrm.shape}, points {pts.shape}')
  n = len(pts)
  # Open3D's hybrid search returns the point itself among its max_nn; it is skipped.
  dist, idx, valid = _neighbours(cKDTree(pts), pts, radius, max_nn)
  valid &= idx != np.arange(n)[:, None]
  feats = pair_features(pts[:, None], nrm[:, None], pts[idx], nrm[idx])
  bins = np.stack([_bin(feats[..., 0], -np.pi, np.pi), _bin(feats[..., 1], -1.0, 1.0),
                   _bin(feats[..., 2], -1.0, 1.0)], -1) + np.arange(3) * BINS
  n_nb = valid.sum(1)
  incr = np.where(n_nb > 0, 100.0 / np.maximum(n_nb, 1), 0.0)
  spfh = np.zeros((n, 3 * BINS))
  rows = np.broadcast_to(np.arange(n)[:, None, None], bins.shape)
  weight = np.broadcast_to((valid * incr[:, None])[..., None], bins.shape)
  np.add.at(spfh, (rows.ravel(), bins.ravel()), weight.ravel())
  # FPFH: neighbours' SPFH weighted by 1/d², each block renormalised to 100.
  d2 = dist ** 2
  wgt = np.where(valid & (d2 > 0), 1.0 / np.where(d2 > 0, d2, 1.0), 0.0)
  nb_mat = sp.csr_matrix((wgt.ravel(), (np.repeat(np.arange(n), idx.shape[1]), idx.ravel())),
                         shape=(n, n))
  acc = nb_mat @ spfh
  block = acc.reshape(n, 3, BINS).sum(-1)
  scale = np.where(block != 0, 100.0 / np.where(block != 0, block, 1.0), 0.0)
  return acc * np.repeat(scale, BINS, axis=1) + spfh


def fpfh_features(points, voxel_size: float, *, normal_factor: float = 2.0,
                  feature_factor: float = 5.0):
  """Upstream's `preprocess`: voxel down-sample, normals (r = 2 voxel, 30 nn), FPFH
  (r = 5 voxel, 100 nn).  Returns (down-sampled points, (m, 33) features)."""
  down = voxel_down_sample(points, voxel_size)
  if len(down) < 3:
    raise ValueError(f'voxel_size={voxel_size} leaves {len(down)} points (the cloud '
                     f'spans {np.ptp(np.asarray(points), 0)}): use a smaller voxel')
  normals = estimate_normals(down, normal_factor * voxel_size, 30)
  return down, compute_fpfh(down, normals, feature_factor * voxel_size, 100)
