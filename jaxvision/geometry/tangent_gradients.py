"""Tangent frames and per-vertex gradient operators of a triangle mesh (numpy, float64).

DiffusionNet's spatial-gradient pre-processing (Sharp et al. 2022, Sec. 3.3): each
vertex gets a tangent frame (its area-weighted normal and the first incident edge
projected onto the tangent plane), and the gradient of a per-vertex function at a
vertex is the area-weighted mean of its faces' gradients expressed in that frame
(upstream fits a least-squares gradient over the neighbouring vertices instead; both
are exact for linear functions).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from jaxvision.geometry import mesh_operators


def tangent_frames(verts, faces) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """(normals, frame x, frame y) per vertex, each (n, 3) unit; y = normal × x."""
  v, f = mesh_operators.check_mesh(verts, faces, 'DiffusionNet mesh')
  n = mesh_operators.vertex_normals(v, f)
  # first incident edge of every vertex (combinatorial: rotates with the mesh)
  corner, nxt = f.ravel(), f[:, [1, 2, 0]].ravel()
  seen, at = np.unique(corner, return_index=True)            # first corner of each vertex
  if len(seen) != len(v):
    raise ValueError(f'{len(v) - len(seen)} vertices lie on no face')
  first = nxt[at]
  e = v[first] - v
  bx = e - np.sum(e * n, axis=1, keepdims=True) * n
  norm = np.linalg.norm(bx, axis=1, keepdims=True)
  bad = norm[:, 0] < 1e-12                 # edge along the normal: any perpendicular
  if np.any(bad):
    alt = np.where(np.abs(n[bad, :1]) < 0.9, [[1.0, 0, 0]], [[0, 1.0, 0]])
    bx[bad] = np.cross(n[bad], alt)
    norm[bad] = np.linalg.norm(bx[bad], axis=1, keepdims=True)
  bx = bx / norm
  return n, bx, np.cross(n, bx)


def gradient_operators(verts, faces) -> tuple[sp.csr_matrix, sp.csr_matrix]:
  """(G_x, G_y) (n, n): (G_x u)_i, (G_y u)_i = the gradient of u at vertex i in its frame."""
  v, f = mesh_operators.check_mesh(verts, faces, 'DiffusionNet mesh')
  _, bx, by = tangent_frames(v, f)
  p = v[f]                                                    # (m, 3 corners, 3)
  cross = np.cross(p[:, 1] - p[:, 0], p[:, 2] - p[:, 0])
  area2 = np.linalg.norm(cross, axis=1)                       # 2 · area
  unit_n = cross / np.maximum(area2, 1e-300)[:, None]
  # face gradient of the hat function of corner c: (n × e_c) / (2A), e_c opposite c
  opp = np.stack([p[:, 2] - p[:, 1], p[:, 0] - p[:, 2], p[:, 1] - p[:, 0]], axis=1)
  hat = np.cross(unit_n[:, None, :], opp) / np.maximum(area2, 1e-300)[:, None, None]
  weight = np.zeros(len(v))
  np.add.at(weight, f.ravel(), np.repeat(area2, 3))
  ops = []
  for frame in (bx, by):
    rows, cols, vals = [], [], []
    for a in range(3):                                        # vertex f[:, a] receives
      for c in range(3):                                      # face gradient of corner c
        rows.append(f[:, a])
        cols.append(f[:, c])
        vals.append(area2 * np.sum(hat[:, c] * frame[f[:, a]], axis=1))
    g = sp.coo_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
                      shape=(len(v), len(v))).tocsr()
    ops.append(sp.diags(1.0 / np.maximum(weight, 1e-300)) @ g)
  return ops[0].tocsr(), ops[1].tocsr()
