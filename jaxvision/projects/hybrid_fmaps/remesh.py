"""Coarse re-meshing by geodesic Voronoi clustering (for the embedded benchmark).

Used to make the two meshes of a benchmark pair differ in connectivity, as the
re-meshed FAUST_r / SCAPE_r of the ULRSSM release do (Hybrid Functional Maps, Sec. 6):

1. samples: Euclidean farthest-point sampling of the vertices, from a seeded start;
2. clusters: every vertex joins its nearest sample along the edge graph (multi-source
   Dijkstra), so a cluster is connected on the surface (no merging across nearby
   sheets, e.g. between the legs);
3. faces: every fine triangle whose three vertices lie in three different clusters
   becomes a coarse triangle of those samples (the dual of the Voronoi cells, with the
   fine orientation); duplicates are merged, faces on non-manifold edges (> 2 faces)
   or on edges that two faces traverse in the same direction are removed, and only
   the largest connected component is kept.

Coarse vertex j is fine vertex `keep[j]` (same position), so correspondences stay
exact: `cluster[i]` is the kept coarse vertex nearest to fine vertex i along the fine
edge graph (−1 only for vertices in other connected components).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from scipy.sparse import csgraph

from jaxvision.geometry import mesh_operators


def farthest_points(verts, count: int, seed: int = 0) -> np.ndarray:
  v = np.asarray(verts, np.float64)
  if not 1 <= count <= len(v):
    raise ValueError(f'cannot sample {count} of {len(v)} vertices')
  idx = [int(np.random.default_rng(seed).integers(len(v)))]
  d = np.linalg.norm(v - v[idx[0]], axis=1)
  for _ in range(count - 1):
    idx.append(int(np.argmax(d)))
    d = np.minimum(d, np.linalg.norm(v - v[idx[-1]], axis=1))
  return np.asarray(idx, np.int64)


def _clean(faces: np.ndarray) -> np.ndarray:
  """Drops faces on edges used by > 2 faces or twice in the same direction."""
  while True:
    half = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    owner = np.tile(np.arange(len(faces)), 3)
    key = np.sort(half, axis=1)
    _, inv, cnt = np.unique(key, axis=0, return_inverse=True, return_counts=True)
    _, dinv, dcnt = np.unique(half, axis=0, return_inverse=True, return_counts=True)
    bad = (cnt[inv.ravel()] > 2) | (dcnt[dinv.ravel()] > 1)
    if not bad.any():
      return faces
    faces = np.delete(faces, np.unique(owner[bad]), axis=0)


def voronoi_remesh(verts, faces, count: int, seed: int = 0):
  """(coarse verts, coarse faces, keep (n_c,), cluster (n,)) — see the module docstring."""
  v, f = mesh_operators.check_mesh(verts, faces, 'remesh input')
  samples = farthest_points(v, count, seed)
  graph = mesh_operators.edge_lengths_graph(v, f)
  _, _, nearest = csgraph.dijkstra(graph, directed=False, indices=samples, min_only=True,
                                   return_predecessors=True)
  label = np.full(len(v), -1, np.int64)
  label[samples] = np.arange(len(samples))
  reached = nearest >= 0
  label[reached] = label[nearest[reached]]
  cf = label[f]
  ok = ((cf >= 0).all(axis=1) & (cf[:, 0] != cf[:, 1]) & (cf[:, 1] != cf[:, 2])
        & (cf[:, 2] != cf[:, 0]))
  cf = cf[ok]
  # merge duplicates (same vertex set, keep the first orientation)
  _, first = np.unique(np.sort(cf, axis=1), axis=0, return_index=True)
  cf = _clean(cf[np.sort(first)])
  adj = sp.coo_matrix((np.ones(3 * len(cf)), (cf.ravel(), np.roll(cf, 1, axis=1).ravel())),
                      shape=(count, count))
  _, comp = csgraph.connected_components(adj, directed=False)
  used = np.zeros(count, bool)
  used[cf.ravel()] = True
  sizes = np.bincount(comp[used], minlength=comp.max() + 1)
  main = np.argmax(sizes)
  cf = cf[comp[cf[:, 0]] == main]
  old = np.unique(cf)
  new_of_old = np.full(count, -1, np.int64)
  new_of_old[old] = np.arange(len(old))
  keep = samples[old]
  # every fine vertex -> its nearest KEPT coarse vertex along the fine edge graph
  _, _, nearest = csgraph.dijkstra(graph, directed=False, indices=keep, min_only=True,
                                   return_predecessors=True)
  coarse_of_fine = np.full(len(v), -1, np.int64)
  coarse_of_fine[keep] = np.arange(len(keep))
  cluster = np.where(nearest >= 0, coarse_of_fine[np.maximum(nearest, 0)], -1)
  return v[keep], new_of_old[cf], keep, cluster
