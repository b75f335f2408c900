"""Bone side estimation (BSE) with a Grassmann distance of coupled eigenspaces.

Bastico et al., CVPR 2024, Sec. 4.2; upstream `model/bse.py` + `benchmark_bse.py`
(the benchmark path, not the demo `bse.py`), facts not code:

1. the source bone is mirrored by negating its 2nd principal component;
2. (spectral only) the target is scaled by l_source / l_target, lengths measured along
   the Fiedler vector (`preprocess.fiedler_length`, upstream's B = diag(1/deg) quirk);
3. the source and the mirrored source are each registered rigidly onto the target
   (upstream: FPFH-RANSAC; here the global 24-hypothesis PCA start + trimmed ICP);
4. 'spectral': `int(cross · n_target)` target points are coupled to their nearest
   neighbours in BOTH registered clouds — three graphs, B = blockdiag(D_t, D_s, D_ms),
   cross weights exp(-d²/(max d² + float eps)) — `maps` eigenmaps; the Grassmann distance
   between the target's cross rows and each cloud's matched rows decides: same side iff
   d(target, source) <= d(target, mirrored) (NaN → opposite, as upstream);
   baselines 'chamfer' and 'hausdorff' compare the registered clouds directly;
5. accuracy over all ordered (source, target) pairs of a bone class.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from jaxvision.geometry import distances
from jaxvision.geometry import registration
from jaxvision.projects.couplap import coupled_laplacian as cl
from jaxvision.projects.couplap import matching_scores as ms
from jaxvision.projects.couplap import preprocess

METHODS = ('spectral', 'chamfer', 'hausdorff')


@dataclasses.dataclass(frozen=True)
class BSESettings:
  max_points: int = 13000
  k: int = 10
  maps: int = 20
  cross: float = 0.2
  cross_mode: str = 'upstream'
  solver: str = 'auto'
  fiedler_threshold: int = 100
  fiedler_mass: str = 'inverse_degree'
  grassmann_clip: bool = False


def limit_points(points, max_points: int, rng: np.random.Generator) -> np.ndarray:
  """Random subsample to `max_points` (upstream's `threshold`), all points if fewer."""
  idx, _ = preprocess.subsample(len(points), max_points, rng)
  return np.asarray(points)[idx]


def _registered_pair(source, mirrored, target, seed):
  s = registration.global_registration(source, target, seed=seed).apply(source)
  m = registration.global_registration(mirrored, target, seed=seed + 1).apply(mirrored)
  return s, m


def spectral_distances(target, source, mirrored, settings: BSESettings, *, seed: int = 0,
                       cross_target: np.ndarray | None = None):
  """(d(target, source), d(target, mirrored)) Grassmann distances of coupled eigenmaps."""
  res = cl.coupled_eigenmaps([target, source, mirrored], hub=0, n_maps=settings.maps,
                             cross=settings.cross, cross_target=cross_target, k=settings.k,
                             cross_mode=settings.cross_mode, weight_eps=np.finfo(float).eps,
                             solver=settings.solver, seed=seed)
  t_sub = res.maps[0][res.cross_target]
  s_sub = res.maps[1][res.couplings[0].other_index]
  m_sub = res.maps[2][res.couplings[1].other_index]
  clip = settings.grassmann_clip
  return (ms.grassmann_distance(t_sub, s_sub, clip=clip),
          ms.grassmann_distance(t_sub, m_sub, clip=clip))


def predict_same_side(source, target, settings: BSESettings, *, methods=METHODS,
                      seed: int = 0) -> dict:
  """{method: (same_side, d_source, d_mirrored)} for one ordered pair."""
  unknown = set(methods) - set(METHODS)
  if unknown:
    raise ValueError(f'unknown BSE method(s) {sorted(unknown)}; known: {METHODS}')
  source = np.asarray(source, np.float64)
  target = np.asarray(target, np.float64)
  mirrored = preprocess.pca_mirror(source)
  out = {}
  if 'spectral' in methods:
    kw = dict(threshold=settings.fiedler_threshold, k=settings.k, mass=settings.fiedler_mass)
    scale = preprocess.fiedler_length(source, **kw) / preprocess.fiedler_length(target, **kw)
    scaled = target * scale
    s, m = _registered_pair(source, mirrored, scaled, seed)
    d_s, d_m = spectral_distances(scaled, s, m, settings, seed=seed)
    out['spectral'] = (ms.same_side(d_s, d_m), d_s, d_m)
  rigid = [x for x in methods if x != 'spectral']
  if rigid:
    s, m = _registered_pair(source, mirrored, target, seed)
    for name in rigid:
      fn = distances.chamfer_distance if name == 'chamfer' else distances.hausdorff_distance
      d_s, d_m = fn(s, target), fn(m, target)
      out[name] = (ms.same_side(d_s, d_m), d_s, d_m)
  return out
