"""The Coupled Laplacian: aligned eigenmaps of several registered point clouds.

Bastico et al., "Coupled Laplacian Eigenmaps for Locally-Aware 3D Rigid Point Cloud
Matching", CVPR 2024, Sec. 3.2, Eq. (6)–(8).  Facts from upstream
`manifold/coupling.py`, `model/ad.py`, `model/bse.py`:

1. each cloud gets its own kNN Gaussian graph `W_i` (k = 10, `graphs.knn_graph`);
2. a *hub* cloud (AD: the test cloud; BSE: the target bone) picks cross points
   (a fraction of its points, `cross_target`); each is linked to its nearest neighbour
   in every other registered cloud, weight `exp(-d² / (max d² + eps))` over that
   coupling's cross distances (eps = 0 for AD, float eps for BSE);
3. the coupled adjacency is the block matrix `[[W_0, X], [Xᵀ, W_1]]` (three blocks for
   BSE), `L_c = D_c - W_c`;
4. eigenmaps solve `L_c u = λ B u` with **B = blockdiag(D_0, D_1, ...) the degrees of
   the uncoupled graphs**; the first (constant) one is dropped, then `n_maps` kept;
   deterministic sign flip (largest-|entry| positive).

Cross-edge modes (config `cross_mode`):
- `'upstream'` (default, for reproduction): upstream writes the cross block by LIL fancy
  assignment of `diags(w)` into `[idx_rows[:, None], idx_cols]`; where a node of the
  other cloud is the nearest neighbour of several hub points, later writes overwrite
  earlier ones (with zeros).  Net effect: each node of the other cloud keeps **at most
  one** cross edge, to the LAST hub point (in `cross_target` order) that chose it.
  Hub points that lost their edge are still scored.
- `'clean'`: every cross edge is kept (the coupling the paper describes).

Zero cross distances everywhere (identical clouds) make upstream's AD weights 0/0 = NaN;
here they are exp(0) = 1, the limit of the formula (documented in the project README).
"""

from __future__ import annotations

import dataclasses
from typing import Sequence

import numpy as np
import scipy.sparse as sp
from scipy.spatial import cKDTree

from jaxvision.geometry import eigensolvers
from jaxvision.geometry import graphs

CROSS_MODES = ('upstream', 'clean')


@dataclasses.dataclass
class Coupling:
  """Cross edges from hub points to one other cloud (indices local to each cloud)."""
  other: int                 # index of the other cloud in the list
  hub_index: np.ndarray      # (m,) hub point per cross point, in selection order
  other_index: np.ndarray    # (m,) its nearest neighbour in the other cloud
  weight: np.ndarray         # (m,) Gaussian weight of the cross edge


@dataclasses.dataclass
class CoupledEigenmaps:
  maps: list                 # per cloud, (n_i, n_maps) rows of the coupled eigenmaps
  eigenvalues: np.ndarray    # (n_maps,) λ_1..λ_n_maps (the dropped λ_0 = 0 excluded)
  cross_target: np.ndarray   # (m,) selected hub points
  couplings: list            # Coupling per other cloud (before the upstream quirk)


def select_cross_points(n_points: int, fraction: float, rng: np.random.Generator) -> np.ndarray:
  """`int(fraction * n)` distinct hub points in random order (upstream's selection)."""
  if not 0.0 <= fraction <= 1.0:
    raise ValueError(f'cross fraction must be in [0, 1], got {fraction}')
  return rng.choice(n_points, size=int(fraction * n_points), replace=False)


def cross_weights(dist: np.ndarray, eps: float = 0.0) -> np.ndarray:
  """`exp(-d² / (max d² + eps))`; all-zero distances give weight 1 (see module doc)."""
  dist = np.asarray(dist, np.float64)
  if dist.size == 0:
    return dist
  denom = np.max(dist) ** 2 + eps
  if denom <= 0.0:
    return np.ones_like(dist)
  return np.exp(-dist ** 2 / denom)


def nearest_coupling(hub_points, other_points, cross_target, other: int,
                     eps: float = 0.0) -> Coupling:
  """Links each selected hub point to its nearest neighbour in `other_points`."""
  hub = graphs.check_points(hub_points, 'hub cloud', 1)
  oth = graphs.check_points(other_points, 'coupled cloud', 1)
  cross_target = np.asarray(cross_target, np.int64)
  if cross_target.size:
    dist, idx = cKDTree(oth).query(hub[cross_target])
  else:
    dist, idx = np.zeros(0), np.zeros(0, np.int64)
  return Coupling(other=other, hub_index=cross_target, other_index=np.asarray(idx, np.int64),
                  weight=cross_weights(dist, eps))


def kept_edges(coupling: Coupling, mode: str) -> np.ndarray:
  """Indices of the cross edges that survive in `mode` (see module doc)."""
  if mode not in CROSS_MODES:
    raise ValueError(f'cross_mode {mode!r}; expected one of {CROSS_MODES}')
  m = coupling.other_index.size
  if mode == 'clean' or m == 0:
    return np.arange(m)
  # Last write wins: for each other-cloud node, the last selection that referenced it.
  _, first_in_reversed = np.unique(coupling.other_index[::-1], return_index=True)
  return np.sort(m - 1 - first_in_reversed)


def coupled_adjacency(adjacencies: Sequence[sp.spmatrix], hub: int,
                      couplings: Sequence[Coupling], mode: str = 'upstream') -> sp.csr_matrix:
  """Block adjacency: uncoupled graphs on the diagonal, symmetric cross edges off it."""
  sizes = [a.shape[0] for a in adjacencies]
  offsets = np.concatenate([[0], np.cumsum(sizes)])
  rows, cols, vals = [], [], []
  for c in couplings:
    if not 0 <= c.other < len(adjacencies) or c.other == hub:
      raise ValueError(f'coupling to cloud {c.other}: must name another cloud than the hub')
    keep = kept_edges(c, mode)
    r = c.hub_index[keep] + offsets[hub]
    q = c.other_index[keep] + offsets[c.other]
    rows += [r, q]
    cols += [q, r]
    vals += [c.weight[keep]] * 2
  n = int(offsets[-1])
  cross = sp.csr_matrix((np.concatenate(vals) if vals else np.zeros(0),
                         (np.concatenate(rows) if rows else np.zeros(0, int),
                          np.concatenate(cols) if cols else np.zeros(0, int))), shape=(n, n))
  return (sp.block_diag([sp.csr_matrix(a) for a in adjacencies], format='csr') + cross).tocsr()


def coupled_eigenmaps(clouds: Sequence[np.ndarray], *, hub: int, n_maps: int,
                      cross: float = 0.5, cross_target: np.ndarray | None = None,
                      cross_source: Sequence[np.ndarray] | None = None, k: int = 10,
                      cross_mode: str = 'upstream', weight_eps: float = 0.0,
                      solver: str = 'auto', seed: int = 0, knn: str = 'sklearn',
                      adjacencies: Sequence[sp.spmatrix] | None = None) -> CoupledEigenmaps:
  """Aligned eigenmaps of registered `clouds` coupled through the `hub` cloud.

  Args:
    clouds: registered point clouds, (n_i, 3) each (AD: [source, target], hub=1;
      BSE: [target, source, mirrored source], hub=0).
    hub: the cloud whose points are selected as cross points.
    n_maps: eigenmaps kept after dropping the first (AD 200, BSE 20).
    cross: fraction of hub points selected (ignored when `cross_target` is given).
    cross_target: explicit selection (hub indices, in order) — to reproduce a run.
    cross_source: explicit nearest neighbours, one array per other cloud in cloud
      order (with `cross_target`); their weights are recomputed from the distances.
    k: kNN neighbours; cross_mode: 'upstream' | 'clean'; weight_eps: added to max d².
    solver, seed: see `eigensolvers.smallest_eigenpairs`; seed also drives selection.
    knn: neighbour tie rule of the kNN graphs (`graphs.knn_edges`).
    adjacencies: precomputed uncoupled graphs (default: kNN Gaussian graphs).
  """
  if len(clouds) < 2:
    raise ValueError(f'coupling needs at least two clouds, got {len(clouds)}')
  if not 0 <= hub < len(clouds):
    raise ValueError(f'hub={hub} is not one of the {len(clouds)} clouds')
  pts = [graphs.check_points(c, f'cloud {i}', k + 1) for i, c in enumerate(clouds)]
  if adjacencies is None:
    adjacencies = [graphs.knn_graph(p, k, knn=knn) for p in pts]
  if cross_target is None:
    cross_target = select_cross_points(len(pts[hub]), cross, np.random.default_rng(seed))
  cross_target = np.asarray(cross_target, np.int64)
  if cross_target.size and (cross_target.min() < 0 or cross_target.max() >= len(pts[hub])):
    raise ValueError('cross_target holds indices outside the hub cloud')
  if len(np.unique(cross_target)) != cross_target.size:
    raise ValueError('cross_target must not repeat a hub point')
  others = [i for i in range(len(pts)) if i != hub]
  couplings = []
  for j, o in enumerate(others):
    if cross_source is None:
      couplings.append(nearest_coupling(pts[hub], pts[o], cross_target, o, weight_eps))
    else:
      idx = np.asarray(cross_source[j], np.int64)
      if idx.shape != cross_target.shape:
        raise ValueError(f'cross_source[{j}] has shape {idx.shape}, cross_target {cross_target.shape}')
      dist = np.linalg.norm(pts[hub][cross_target] - pts[o][idx], axis=1)
      couplings.append(Coupling(o, cross_target, idx, cross_weights(dist, weight_eps)))
  w_c = coupled_adjacency(adjacencies, hub, couplings, cross_mode)
  mass = np.concatenate([graphs.degrees(a) for a in adjacencies])  # UNCOUPLED degrees
  vals, vecs = eigensolvers.smallest_eigenpairs(graphs.laplacian(w_c), mass, n_maps + 1,
                                                solver=solver, seed=seed)
  vecs = vecs[:, 1:]
  offsets = np.concatenate([[0], np.cumsum([len(p) for p in pts])])
  maps = [vecs[offsets[i]:offsets[i + 1]] for i in range(len(pts))]
  return CoupledEigenmaps(maps=maps, eigenvalues=vals[1:], cross_target=cross_target,
                          couplings=couplings)


def independent_eigenmaps(points, n_maps: int, *, k: int = 10, solver: str = 'auto',
                          seed: int = 0, knn: str = 'sklearn', adjacency: sp.spmatrix | None = None) -> np.ndarray:
  """Laplacian eigenmaps of one cloud alone (`L u = λ D u`, first dropped, sign-flipped).

  Upstream's "GPS" baseline; the sign/order ambiguity is what coupling removes.
  """
  pts = graphs.check_points(points, 'cloud', k + 1)
  w = graphs.knn_graph(pts, k, knn=knn) if adjacency is None else adjacency
  _, vecs = eigensolvers.smallest_eigenpairs(graphs.laplacian(w), graphs.degrees(w),
                                             n_maps + 1, solver=solver, seed=seed)
  return vecs[:, 1:]
