"""Global rigid registration by RANSAC on FPFH feature matches (no Open3D).

Coupled Laplacian (Bastico et al., CVPR 2024), Sec. 4, upstream
`utils/pre_processing.py::ransac_registration` calls Open3D's
`registration_ransac_based_on_feature_matching` with: FPFH of voxel-down-sampled clouds
(`fpfh.fpfh_features`), mutual feature matches, 3 correspondences per hypothesis,
point-to-point estimation without scaling, an edge-length checker (0.9) and a distance
checker (1.5 voxel), max 100,000 iterations at confidence 0.999.  The same algorithm
(Open3D 0.17's documented behaviour, facts only), vectorised over batches of
hypotheses in NumPy:

1. correspondences: each source feature's nearest target feature (L2); with
   `mutual`, only pairs that are each other's nearest (all pairs when fewer than
   3·ransac_n are mutual, as Open3D);
2. a hypothesis: `ransac_n` distinct random correspondences; rejected unless every
   pair of its source points and of its target points has lengths within the
   similarity ratio, then Kabsch, then rejected unless every sampled source point lands
   within `distance` of its target;
3. score: fitness = fraction of ALL correspondences within `distance` after the move,
   ties by inlier RMSE; the best is kept.  The loop stops after `max_iter` or when
   the confidence bound `log(1 - c) / log(1 - fitness^n)` is reached.

Open3D's result is the best hypothesis itself (no refit); so is this one.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from scipy.spatial import cKDTree

from jaxvision.geometry import fpfh
from jaxvision.geometry import graphs
from jaxvision.geometry import registration


@dataclasses.dataclass(frozen=True)
class RansacSettings:
  voxel_size: float
  distance_factor: float = 1.5      # inlier distance = factor · voxel
  ransac_n: int = 3
  edge_similarity: float = 0.9
  max_iter: int = 100000
  confidence: float = 0.999
  mutual: bool = True
  batch: int = 2000                 # hypotheses drawn per vectorised round


def feature_correspondences(source_feat, target_feat, mutual: bool = True,
                            ransac_n: int = 3) -> np.ndarray:
  """(c, 2) index pairs (source, target) of nearest features (module doc, step 1)."""
  s, t = np.asarray(source_feat, np.float64), np.asarray(target_feat, np.float64)
  if s.ndim != 2 or t.ndim != 2 or s.shape[1] != t.shape[1]:
    raise ValueError(f'features must be (n, d) arrays of one width, got {s.shape} and {t.shape}')
  s2t = cKDTree(t).query(s)[1]
  pairs = np.stack([np.arange(len(s)), s2t], 1)
  if not mutual:
    return pairs
  t2s = cKDTree(s).query(t)[1]
  keep = t2s[s2t] == np.arange(len(s))
  return pairs[keep] if keep.sum() >= 3 * ransac_n else pairs


def _batched_kabsch(src, dst):
  """Proper rotations and translations for (b, n, 3) paired point sets."""
  ms, md = src.mean(1, keepdims=True), dst.mean(1, keepdims=True)
  cov = np.einsum('bni,bnj->bij', dst - md, src - ms)
  u, _, vt = np.linalg.svd(cov)
  d = np.sign(np.linalg.det(u @ vt))
  d[d == 0] = 1.0
  fix = np.ones((len(src), 3))
  fix[:, 2] = d
  rot = u @ (fix[:, :, None] * vt)
  trans = md[:, 0] - np.einsum('bij,bj->bi', rot, ms[:, 0])
  return rot, trans


def ransac_on_correspondences(src_pts, tgt_pts, pairs, settings: RansacSettings,
                              rng: np.random.Generator) -> registration.RigidTransform:
  """Steps 2–3 of the module doc on given correspondences."""
  n = settings.ransac_n
  if len(pairs) < n:
    raise ValueError(f'RANSAC needs at least {n} correspondences, got {len(pairs)}')
  dist_thr = settings.distance_factor * settings.voxel_size
  cs, ct = src_pts[pairs[:, 0]], tgt_pts[pairs[:, 1]]
  best = (-1.0, np.inf, np.eye(3), np.zeros(3))
  done, needed = 0, settings.max_iter
  iu, ju = np.triu_indices(n, 1)
  while done < min(needed, settings.max_iter):
    b = min(settings.batch, settings.max_iter - done)
    sample = _distinct(rng, b, len(pairs), n)
    done += b
    s, t = cs[sample], ct[sample]                              # (b, n, 3)
    ls = np.linalg.norm(s[:, iu] - s[:, ju], axis=-1)
    lt = np.linalg.norm(t[:, iu] - t[:, ju], axis=-1)
    ok = np.all((ls >= lt * settings.edge_similarity) & (lt >= ls * settings.edge_similarity), 1)
    if not ok.any():
      continue
    rot, trans = _batched_kabsch(s[ok], t[ok])
    moved = np.einsum('bij,bnj->bni', rot, s[ok]) + trans[:, None]
    ok2 = np.all(np.linalg.norm(moved - t[ok], axis=-1) < dist_thr, 1)
    rot, trans = rot[ok2], trans[ok2]
    for r, tr in zip(rot, trans):
      res = np.linalg.norm(cs @ r.T + tr - ct, axis=1)
      inl = res < dist_thr
      fit = inl.mean()
      rmse = np.sqrt(np.mean(res[inl] ** 2)) if inl.any() else np.inf
      if fit > best[0] or (fit == best[0] and rmse < best[1]):
        best = (fit, rmse, r, tr)
    if best[0] > 0:
      if best[0] >= 1.0:
        break
      needed = int(np.ceil(np.log(1 - settings.confidence) / np.log(1 - best[0] ** n)))
  if best[0] <= 0:
    raise ValueError(f'RANSAC found no hypothesis with an inlier after {done} iterations '
                     f'(voxel {settings.voxel_size}): the clouds or the voxel size do not fit')
  return registration.RigidTransform(best[2], best[3], float(best[1]))


def _distinct(rng, b, m, n):
  """b rows of n distinct indices in [0, m) (rows with a repeat are redrawn)."""
  if m <= 64:   # few correspondences: repeats are common, draw permutations instead
    return np.argsort(rng.random((b, m)), axis=1)[:, :n]
  out = rng.integers(0, m, (b, n))
  while True:
    srt = np.sort(out, 1)
    bad = np.any(srt[:, 1:] == srt[:, :-1], 1)
    if not bad.any():
      return out
    out[bad] = rng.integers(0, m, (int(bad.sum()), n))


def fpfh_ransac(source, target, settings: RansacSettings, *,
                seed: int = 0) -> registration.RigidTransform:
  """Upstream's `ransac_registration`: the rigid move of `source` onto `target`."""
  src = graphs.check_points(source, 'source cloud', 3)
  tgt = graphs.check_points(target, 'target cloud', 3)
  s_down, s_feat = fpfh.fpfh_features(src, settings.voxel_size)
  t_down, t_feat = fpfh.fpfh_features(tgt, settings.voxel_size)
  pairs = feature_correspondences(s_feat, t_feat, settings.mutual, settings.ransac_n)
  return ransac_on_correspondences(s_down, t_down, pairs, settings, np.random.default_rng(seed))
