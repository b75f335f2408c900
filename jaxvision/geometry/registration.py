"""Rigid registration: Kabsch (JAX), trimmed ICP, and a global start robust to any rotation.

Coupled Laplacian (Bastico et al., CVPR 2024), Sec. 4 and upstream
`utils/pre_processing.py::ransac_registration`: the clouds are registered before they
are coupled — upstream uses Open3D FPFH + RANSAC, then (AD) probreg affine CPD.  This
module is the in-library substitute for the rigid part:

- `kabsch`: the least-squares proper rotation + translation between paired points
  (Kabsch 1976; SVD of the weighted cross-covariance with a det correction);
- `icp`: point-to-point ICP with nearest neighbours (KD-tree), trimmed to the closest
  `trim` fraction of pairs each round (robust to partial overlap and to anomalies);
- `global_registration`: the 24 proper rotations that map the source's principal axes
  onto the target's (every axis permutation and sign), each refined by a short ICP on
  subsamples; the lowest trimmed RMS wins, then a full ICP.  Any initial rotation is
  recovered when the principal axes are defined (distinct PCA variances); when two
  are close, the permutations still cover the candidates ICP can converge from.
"""

from __future__ import annotations

import dataclasses
import itertools

import jax
import jax.numpy as jnp
import numpy as np
from scipy.spatial import cKDTree

from jaxvision.geometry import graphs


@dataclasses.dataclass
class RigidTransform:
  rotation: np.ndarray      # (3, 3), det +1
  translation: np.ndarray   # (3,)
  rms: float = float('nan')  # trimmed RMS residual at convergence

  def apply(self, points) -> np.ndarray:
    return np.asarray(points) @ self.rotation.T + self.translation

  def compose(self, first: 'RigidTransform') -> 'RigidTransform':
    """self ∘ first."""
    return RigidTransform(self.rotation @ first.rotation,
                          self.rotation @ first.translation + self.translation, self.rms)


def identity() -> RigidTransform:
  return RigidTransform(np.eye(3), np.zeros(3))


@jax.jit
def _rotation_from_covariance(cov):
  """argmax_R tr(R covᵀ) over proper rotations (the Kabsch SVD step), 3×3 in JAX."""
  u, _, vt = jnp.linalg.svd(cov)
  d = jnp.sign(jnp.linalg.det(u @ vt))
  return u @ jnp.diag(jnp.array([1.0, 1.0, 1.0]).at[2].set(d)) @ vt


def kabsch(src, dst, weights=None) -> RigidTransform:
  """Proper rigid transform T minimising Σ w_i |T(src_i) - dst_i|².

  The weighted cross-covariance is summed on the host in float64 (any n, no
  recompilation); its 3×3 SVD with the reflection guard runs in JAX.
  """
  src = graphs.check_points(src, 'source points', 3)
  dst = graphs.check_points(dst, 'target points', 3)
  if src.shape != dst.shape or src.shape[1] != 3:
    raise ValueError(f'kabsch needs paired (n, 3) arrays, got {src.shape} and {dst.shape}')
  w = np.ones(len(src)) if weights is None else np.asarray(weights, np.float64)
  w = w / w.sum()
  mu_s, mu_d = w @ src, w @ dst
  cov = ((dst - mu_d) * w[:, None]).T @ (src - mu_s)
  scale = max(float(np.abs(cov).max()), 1e-300)
  rot = np.asarray(_rotation_from_covariance(jnp.asarray(cov / scale)), np.float64)
  # Re-orthonormalise in float64 (the JAX solve may run in float32), keeping det +1.
  u, _, vt = np.linalg.svd(rot)
  rot = u @ vt
  return RigidTransform(rot, mu_d - rot @ mu_s)


def icp(source, target, init: RigidTransform | None = None, *, max_iter: int = 50,
        trim: float = 0.9, tol: float = 1e-7, tree: cKDTree | None = None) -> RigidTransform:
  """Trimmed point-to-point ICP moving `source` onto `target`."""
  src = graphs.check_points(source, 'source cloud', 3)
  tgt = graphs.check_points(target, 'target cloud', 3)
  if not 0.0 < trim <= 1.0:
    raise ValueError(f'trim must be in (0, 1], got {trim}')
  tree = tree or cKDTree(tgt)
  cur = init or identity()
  prev = np.inf
  n_keep = max(3, int(trim * len(src)))
  for _ in range(max_iter):
    moved = cur.apply(src)
    dist, idx = tree.query(moved)
    keep = np.argsort(dist)[:n_keep]
    rms = float(np.sqrt(np.mean(dist[keep] ** 2)))
    step = kabsch(moved[keep], tgt[idx[keep]])
    cur = step.compose(cur)
    if prev - rms < tol * max(rms, 1e-12):
      break
    prev = rms
  dist, _ = tree.query(cur.apply(src))
  cur.rms = float(np.sqrt(np.mean(np.sort(dist)[:n_keep] ** 2)))
  return cur


def _principal_frame(points):
  c = points.mean(0)
  _, vecs = np.linalg.eigh(np.cov((points - c).T))
  return c, vecs[:, ::-1]   # columns: decreasing variance


def candidate_rotations(source, target) -> list[np.ndarray]:
  """The 24 proper rotations mapping source principal axes to target principal axes."""
  _, fs = _principal_frame(source)
  _, ft = _principal_frame(target)
  out = []
  for perm in itertools.permutations(range(3)):
    for signs in itertools.product((1.0, -1.0), repeat=3):
      m = np.zeros((3, 3))
      m[list(perm), range(3)] = signs
      rot = ft @ m @ fs.T
      if np.linalg.det(rot) > 0:
        out.append(rot)
  return out


def global_registration(source, target, *, n_samples: int = 800, coarse_iter: int = 15,
                        max_iter: int = 60, trim: float = 0.9, seed: int = 0) -> RigidTransform:
  """Rigid transform moving `source` onto `target` from ANY initial pose."""
  src = graphs.check_points(source, 'source cloud', 4)
  tgt = graphs.check_points(target, 'target cloud', 4)
  rng = np.random.default_rng(seed)
  s_sub = src[rng.choice(len(src), min(n_samples, len(src)), replace=False)]
  t_sub = tgt[rng.choice(len(tgt), min(n_samples, len(tgt)), replace=False)]
  cs, ct = src.mean(0), tgt.mean(0)
  tree = cKDTree(t_sub)
  best = None
  for rot in candidate_rotations(src, tgt):
    start = RigidTransform(rot, ct - rot @ cs)
    fit = icp(s_sub, t_sub, start, max_iter=coarse_iter, trim=trim, tree=tree)
    if best is None or fit.rms < best.rms:
      best = fit
  return icp(src, tgt, best, max_iter=max_iter, trim=trim)
