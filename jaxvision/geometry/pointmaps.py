"""Point map <-> functional map conversions for LBO, elastic and hybrid bases.

Hybrid Functional Maps (Bastian et al., CVPR 2024), Sec. 4, and upstream
`utils/fmap_util.py` (facts, not code).  A point map `p2p` (shape y -> shape x) gives,
for every vertex of y, the index of its image on x; `C` maps x-coefficients to
y-coefficients.

- LBO (orthonormal): `C = lstsq(Φy, Φx[p2p])`; back by nearest neighbour of the rows of
  `Φy` among the rows of `Φx Cᵀ`;
- elastic (non-orthogonal, M_k = ΦᵀMΦ): `C = lstsq(√My Φy, √My Φx[p2p])`; back with the
  embeddings `A = Φx M_kx⁻¹ Cᵀ M_ky M_ky^{-1/2}`, `B = Φy M_ky^{-1/2}`;
- hybrid: the two embeddings concatenated (elastic columns first, no weighting), then
  one nearest-neighbour query.

NumPy float64 with scipy's cKDTree (exact nearest neighbours): these run offline in
ZoomOut and in evaluation.
"""

from __future__ import annotations

import numpy as np
from scipy.spatial import cKDTree

from jaxvision.geometry import spectral


def _check_p2p(p2p, n_y: int, n_x: int) -> np.ndarray:
  p = np.asarray(p2p)
  if p.shape != (n_y,) or not np.issubdtype(p.dtype, np.integer):
    raise ValueError(f'the point map must be an integer vector of {n_y} entries (one per '
                     f'target vertex), got {p.dtype} of shape {p.shape}')
  if p.min() < 0 or p.max() >= n_x:
    raise ValueError(f'the point map refers to a source vertex outside 0..{n_x - 1}')
  return p


def nn_query(emb_x, emb_y, workers: int = 1) -> np.ndarray:
  """For every row of emb_y, the index of its nearest row of emb_x."""
  _, idx = cKDTree(np.asarray(emb_x, np.float64)).query(np.asarray(emb_y, np.float64),
                                                         k=1, workers=workers)
  return idx.astype(np.int64)


def pointmap_to_fmap(p2p, evecs_x, evecs_y) -> np.ndarray:
  """C_xy = argmin ‖Φy C − Φx[p2p]‖ (LBO)."""
  p = _check_p2p(p2p, evecs_y.shape[0], evecs_x.shape[0])
  return np.linalg.lstsq(evecs_y, evecs_x[p], rcond=None)[0]


def elastic_pointmap_to_fmap(p2p, evecs_x, evecs_y, mass_y) -> np.ndarray:
  """C_xy = argmin ‖√My (Φy C − Φx[p2p])‖ (non-orthogonal basis)."""
  p = _check_p2p(p2p, evecs_y.shape[0], evecs_x.shape[0])
  sq = np.sqrt(np.asarray(mass_y, np.float64))[:, None]
  return np.linalg.lstsq(sq * evecs_y, sq * evecs_x[p], rcond=None)[0]


def lbo_embeddings(c_xy, evecs_x, evecs_y):
  return evecs_x @ np.asarray(c_xy).T, evecs_y


def elastic_embeddings(c_xy, evecs_x, evecs_y, mass_x, mass_y):
  bx = spectral.make_basis(np.zeros(evecs_x.shape[1]), evecs_x, mass_x)
  by = spectral.make_basis(np.zeros(evecs_y.shape[1]), evecs_y, mass_y)
  emb_x = (evecs_x @ np.linalg.inv(bx.spectral_mass) @ np.asarray(c_xy).T
           @ by.spectral_mass @ by.inv_sqrt_spectral_mass)
  emb_y = evecs_y @ by.inv_sqrt_spectral_mass
  return emb_x, emb_y


def fmap_to_pointmap(c_xy, evecs_x, evecs_y) -> np.ndarray:
  return nn_query(*lbo_embeddings(c_xy, evecs_x, evecs_y))


def elastic_fmap_to_pointmap(c_xy, evecs_x, evecs_y, mass_x, mass_y) -> np.ndarray:
  return nn_query(*elastic_embeddings(c_xy, evecs_x, evecs_y, mass_x, mass_y))


def hybrid_embeddings(c_lbo, evecs_x, evecs_y, c_el, el_evecs_x, el_evecs_y, el_mass_x,
                      el_mass_y):
  lx, ly = lbo_embeddings(c_lbo, evecs_x, evecs_y)
  ex, ey = elastic_embeddings(c_el, el_evecs_x, el_evecs_y, el_mass_x, el_mass_y)
  return np.concatenate([ex, lx], axis=1), np.concatenate([ey, ly], axis=1)


def hybrid_fmap_to_pointmap(c_lbo, evecs_x, evecs_y, c_el, el_evecs_x, el_evecs_y,
                            el_mass_x, el_mass_y) -> np.ndarray:
  return nn_query(*hybrid_embeddings(c_lbo, evecs_x, evecs_y, c_el, el_evecs_x,
                                     el_evecs_y, el_mass_x, el_mass_y))
