"""Point-cloud pre-processing of the Coupled Laplacian pipelines.

Bastico et al., CVPR 2024, Sec. 4; upstream `utils/io.py::load_tiff_pc`,
`utils/pre_processing.py::largest_connected_component`, `model/bse.py`,
`manifold/utils.py::length_from_fiedler` (facts, not code):

- `remove_background_plane`: drop all-zero (missing) points, PCA to 3 components, keep
  the points with |PC3| > threshold on the side of the plane whose height extent is
  larger (the object), with PC3 pointing into the object.  Deviation: upstream negates
  only PC3 when the object lies on the negative side (a reflection of the cloud); here
  the frame stays right-handed (det +1) so that clouds remain related by rigid motions;
- `subsample`: random points without replacement (sampling factor = n_before / n_after);
- `largest_component`: nodes of the largest connected component of the kNN graph;
- `pca_mirror`: reflect a cloud by negating its 2nd principal component (BSE);
- `fiedler_length`: distance between the means of the `threshold` points at each end of
  the Fiedler vector.  Upstream solves `L u = λ diag(1/deg) u` (B = inverse degrees, a
  quirk); `mass='inverse_degree'` (default) keeps it, `mass='degree'` is the usual one.
  Deviation: on a disconnected kNN graph the Fiedler vector is not unique (upstream
  gets an arbitrary null vector); here it is taken on the largest component.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from jaxvision.geometry import eigensolvers
from jaxvision.geometry import graphs


@dataclasses.dataclass
class Foreground:
  points: np.ndarray    # (n, 3) object points in the (right-handed) PCA frame
  index: np.ndarray     # (n,) index of each point in the input array
  mean: np.ndarray      # (3,) PCA centre
  axes: np.ndarray      # (3, 3) rows: principal axes (frame = (x - mean) @ axes.T)
  flipped: bool = False  # the object lay on the negative PC3 side (frame turned over)


def pca_frame(points):
  """Mean and principal axes (rows, decreasing variance, right-handed)."""
  pts = graphs.check_points(points, 'points', 3)
  mean = pts.mean(0)
  _, vecs = np.linalg.eigh(np.cov((pts - mean).T))
  axes = vecs[:, ::-1].T.copy()
  if np.linalg.det(axes) < 0:
    axes[0] *= -1
  return mean, axes


def remove_background_plane(points, threshold: float = 0.001) -> Foreground:
  """Object points above the dominant plane (the scanner's table), in the PCA frame."""
  pts = np.asarray(points, np.float64)
  if pts.ndim != 2 or pts.shape[1] != 3:
    raise ValueError(f'expected (n, 3) xyz points, got shape {pts.shape}')
  valid = np.flatnonzero(~np.all(pts == 0, axis=1) & np.all(np.isfinite(pts), axis=1))
  if valid.size < 10:
    raise ValueError(f'only {valid.size} valid (non-zero) points in the scan')
  mean, axes = pca_frame(pts[valid])
  local = (pts[valid] - mean) @ axes.T
  up, down = local[:, 2] > threshold, local[:, 2] <= -threshold
  h_up = np.ptp(local[up, 2]) if up.any() else -1.0
  h_down = np.ptp(local[down, 2]) if down.any() else -1.0
  if max(h_up, h_down) < 0:
    raise ValueError(f'no point is farther than threshold={threshold} from the fitted plane')
  if h_down > h_up:
    axes = axes * np.array([-1.0, 1.0, -1.0])[:, None]   # rotate 180° about PC2: det stays +1
    local = local * np.array([-1.0, 1.0, -1.0])
    up = down
  return Foreground(points=local[up], index=valid[up], mean=mean, axes=axes,
                    flipped=bool(h_down > h_up))


def subsample(n_total: int, n_points: int | None, rng: np.random.Generator):
  """(indices, sampling_factor): `n_points` random distinct indices (all if fewer)."""
  if n_points is None or n_points <= 0 or n_points >= n_total:
    return np.arange(n_total), 1.0
  return rng.choice(n_total, n_points, replace=False), n_total / n_points


def largest_component(points, k: int = 10, knn: str = 'sklearn') -> np.ndarray:
  return graphs.largest_connected_component(graphs.knn_graph(points, k, knn=knn))


def pca_mirror(points) -> np.ndarray:
  """The cloud reflected through the plane of its 1st and 3rd principal axes."""
  pts = graphs.check_points(points, 'points', 3)
  mean, axes = pca_frame(pts)
  local = (pts - mean) @ axes.T
  local[:, 1] *= -1.0
  return local @ axes + mean


def fiedler_length(points, *, threshold: int = 100, k: int = 10,
                   mass: str = 'inverse_degree', seed: int = 0, knn: str = 'sklearn') -> float:
  """Length of a cloud along its Fiedler vector (BSE scale normalisation)."""
  pts = graphs.check_points(points, 'points', max(k + 2, 3))
  if mass not in ('inverse_degree', 'degree'):
    raise ValueError(f"fiedler mass {mass!r}; expected 'inverse_degree' or 'degree'")
  w = graphs.knn_graph(pts, k, knn=knn)
  keep = graphs.largest_connected_component(w)
  if len(keep) < len(pts):   # a disconnected graph has no unique Fiedler vector
    pts = pts[keep]
    w = graphs.restrict(w, keep)
  deg = graphs.degrees(w)
  b = 1.0 / deg if mass == 'inverse_degree' else deg
  _, vecs = eigensolvers.smallest_eigenpairs(graphs.laplacian(w), b, 2, seed=seed,
                                             solver='eigsh' if len(pts) > 3 else 'dense')
  fiedler = vecs[:, 1]
  order = np.argsort(fiedler)
  m = min(threshold, len(pts) // 2)
  return float(np.linalg.norm(pts[order[-m:]].mean(0) - pts[order[:m]].mean(0)))
