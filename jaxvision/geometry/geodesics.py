"""Approximate geodesic distances on triangle meshes: Dijkstra on the edge graph.

Hybrid Functional Maps (Bastian et al., CVPR 2024), Sec. 6 (evaluation), upstream
`utils/shape_util.py::compute_geodesic_distmat` (facts, not code): shortest paths
through mesh edges weighted by their Euclidean length (scipy.sparse.csgraph), over
all pairs or from given sources.  Edge-graph distances over-estimate true surface
geodesics (paths zig-zag along edges; the error shrinks with mesh resolution).  The
mean geodesic error built on these matrices lives in `jaxvision.metrics`.
"""

from __future__ import annotations

import numpy as np
from scipy.sparse import csgraph

from jaxvision.geometry import mesh_operators


def geodesic_distances(verts, faces, sources=None, *, require_connected: bool = True):
  """(len(sources), n) edge-graph geodesic distances (all vertices when sources=None)."""
  graph = mesh_operators.edge_lengths_graph(verts, faces)
  n = graph.shape[0]
  if require_connected:
    n_comp, _ = csgraph.connected_components(graph, directed=False)
    if n_comp != 1:
      raise ValueError(f'the mesh has {n_comp} connected components: geodesic distances '
                       'between them are infinite (pass require_connected=False to get inf)')
  if sources is None:
    idx = None
  else:
    idx = np.atleast_1d(np.asarray(sources, np.int64))
    if idx.min() < 0 or idx.max() >= n:
      raise ValueError(f'source vertices must lie in 0..{n - 1}')
  return csgraph.dijkstra(graph, directed=False, indices=idx)


def geodesic_distmat(verts, faces, **kwargs) -> np.ndarray:
  """(n, n) all-pairs edge-graph geodesic distance matrix (upstream's `dist_x`)."""
  return geodesic_distances(verts, faces, None, **kwargs)
