"""ZoomOut (Melzi et al. 2019) and the hybrid ZoomOut of Hybrid Functional Maps.

Bastian et al., CVPR 2024, Sec. 5 ("Hybrid ZoomOut") and upstream
`utils/fmap_util.py::zoomout / elas_zoomout / hybrid_zoomout` (facts, not code):
alternate point map -> fmap -> point map while the basis grows by one function a step.

- `zoomout`: LBO sizes k_init, k_init + 1, ..., k_final;
- `elastic_zoomout`: the same with the non-orthogonal conversions;
- `hybrid_zoomout`: sizes (k_lbo, k_el) grow linearly together from k_init = (20, 10) to
  k_final = (100, 100) over `sum(k_final) − sum(k_init)` steps (each truncated with
  `int`, as upstream), both maps refit every step, one hybrid nearest-neighbour query.

Point maps go from shape y to shape x (one source index per target vertex).
"""

from __future__ import annotations

import numpy as np

from jaxvision.geometry import pointmaps


def _check_sizes(name, evecs_x, evecs_y, k_final):
  if evecs_x.shape[1] < k_final or evecs_y.shape[1] < k_final:
    raise ValueError(f'{name}: k_final={k_final} but the bases have {evecs_x.shape[1]} and '
                     f'{evecs_y.shape[1]} functions')


def zoomout(p2p, evecs_x, evecs_y, k_init: int = 30, k_final: int = 200,
            step: int = 1) -> np.ndarray:
  _check_sizes('zoomout', evecs_x, evecs_y, k_final)
  p2p = np.asarray(p2p, np.int64)
  for k in range(k_init, k_final + 1, step):
    c = pointmaps.pointmap_to_fmap(p2p, evecs_x[:, :k], evecs_y[:, :k])
    p2p = pointmaps.fmap_to_pointmap(c, evecs_x[:, :k], evecs_y[:, :k])
  return p2p


def elastic_zoomout(p2p, evecs_x, evecs_y, mass_x, mass_y, k_init: int = 30,
                    k_final: int = 200, step: int = 1) -> np.ndarray:
  _check_sizes('elastic_zoomout', evecs_x, evecs_y, k_final)
  p2p = np.asarray(p2p, np.int64)
  for k in range(k_init, k_final + 1, step):
    c = pointmaps.elastic_pointmap_to_fmap(p2p, evecs_x[:, :k], evecs_y[:, :k], mass_y)
    p2p = pointmaps.elastic_fmap_to_pointmap(c, evecs_x[:, :k], evecs_y[:, :k], mass_x,
                                             mass_y)
  return p2p


def hybrid_schedule(k_init=(20, 10), k_final=(100, 100)) -> list[tuple[int, int]]:
  """The (k_lbo, k_elastic) sizes of each hybrid ZoomOut step."""
  (l0, e0), (l1, e1) = k_init, k_final
  steps = (l1 + e1) - (l0 + e0)
  if steps <= 0:
    return [(l1, e1)]
  return [(int(l0 + s * (l1 - l0) / steps), int(e0 + s * (e1 - e0) / steps))
          for s in range(steps + 1)]


def hybrid_zoomout(p2p, evecs_x, evecs_y, el_evecs_x, el_evecs_y, el_mass_x, el_mass_y,
                   k_init=(20, 10), k_final=(100, 100)) -> np.ndarray:
  _check_sizes('hybrid_zoomout (LBO)', evecs_x, evecs_y, k_final[0])
  _check_sizes('hybrid_zoomout (elastic)', el_evecs_x, el_evecs_y, k_final[1])
  p2p = np.asarray(p2p, np.int64)
  for kl, ke in hybrid_schedule(k_init, k_final):
    lx, ly = evecs_x[:, :kl], evecs_y[:, :kl]
    ex, ey = el_evecs_x[:, :ke], el_evecs_y[:, :ke]
    c_lbo = pointmaps.pointmap_to_fmap(p2p, lx, ly)
    c_el = pointmaps.elastic_pointmap_to_fmap(p2p, ex, ey, el_mass_y)
    p2p = pointmaps.hybrid_fmap_to_pointmap(c_lbo, lx, ly, c_el, ex, ey, el_mass_x, el_mass_y)
  return p2p
