"""Discrete operators of triangle meshes (float64 NumPy/SciPy pre-processing).

Hybrid Functional Maps (Bastian et al., CVPR 2024), Sec. 3 / supplementary, and the
upstream pre-processing (`xieyizheng/hybridfmaps utils/geometry_util.py`, which calls
potpourri3d and libigl; facts, not code):

- `cotan_laplacian`: the positive semi-definite cotangent stiffness matrix
  `L_ij = -½(cot α_ij + cot β_ij)`, `L_ii = -Σ_j L_ij` (Pinkall–Polthier; potpourri3d's
  `cotan_laplacian` convention, degenerate faces guarded by `denom_eps`);
- `barycentric_mass`: one third of every incident face area (`pp3d.vertex_areas`);
- `voronoi_mass`: the mixed Voronoi area of Meyer et al. 2003 ("Discrete
  differential-geometry operators", Fig. 4) as libigl's `MASSMATRIX_TYPE_VORONOI`: for a
  non-obtuse face a corner gets `(|e_ij|² cot γ_k + |e_ik|² cot γ_j) / 8`; in an obtuse
  face the obtuse corner gets A/2 and the two others A/4;
- `vertex_normals`: face normals summed with area weights (libigl's default weighting
  of `per_vertex_normals`), then normalised;
- `edge_flaps`: libigl's `edge_flaps` topology: unique edges (i, j), the face holding the
  oriented half-edge i→j (flap 0) and j→i (flap 1), and the corner opposite the edge in
  each (−1 on the boundary); `interior_hinges` lists (i, j, k, l) for the bending energy;
- `normalize_area`: centre at the vertex mean and scale to unit total area
  (upstream `preprocess.py`, skipped there with `--no_normalize`).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp


def check_mesh(verts, faces, name: str = 'mesh') -> tuple[np.ndarray, np.ndarray]:
  """(n, 3) float64 vertices and (m, 3) int64 faces; clear errors for bad input."""
  v = np.asarray(verts, dtype=np.float64)
  f = np.asarray(faces)
  if v.ndim != 2 or v.shape[1] != 3 or v.shape[0] < 3:
    raise ValueError(f'{name}: vertices must be an (n >= 3, 3) array, got shape {v.shape}')
  if not np.all(np.isfinite(v)):
    raise ValueError(f'{name}: vertices have NaN or infinite coordinates')
  if f.ndim != 2 or f.shape[1] != 3 or f.shape[0] < 1:
    raise ValueError(f'{name}: faces must be an (m >= 1, 3) array of triangles, got shape '
                     f'{f.shape}')
  if not np.issubdtype(f.dtype, np.integer):
    if not np.all(np.equal(np.mod(f, 1), 0)):
      raise ValueError(f'{name}: face indices must be integers')
  f = f.astype(np.int64)
  if f.min() < 0 or f.max() >= v.shape[0]:
    raise ValueError(f'{name}: a face refers to a vertex outside 0..{v.shape[0] - 1}')
  if np.any((f[:, 0] == f[:, 1]) | (f[:, 1] == f[:, 2]) | (f[:, 0] == f[:, 2])):
    raise ValueError(f'{name}: a face repeats a vertex (degenerate triangle)')
  return v, f


def face_areas(verts, faces) -> np.ndarray:
  v, f = check_mesh(verts, faces)
  cross = np.cross(v[f[:, 1]] - v[f[:, 0]], v[f[:, 2]] - v[f[:, 0]])
  return 0.5 * np.linalg.norm(cross, axis=1)


def total_area(verts, faces) -> float:
  return float(np.sum(face_areas(verts, faces)))


def _corner_cotangents(v, f, denom_eps):
  """cot of the angle at each corner c of every face: (m, 3)."""
  cots = np.empty(f.shape, np.float64)
  for c in range(3):
    p = v[f[:, c]]
    a = v[f[:, (c + 1) % 3]] - p
    b = v[f[:, (c + 2) % 3]] - p
    dot = np.sum(a * b, axis=1)
    cross = np.linalg.norm(np.cross(a, b), axis=1)
    cots[:, c] = dot / np.maximum(cross, denom_eps)
  return cots


def cotan_laplacian(verts, faces, denom_eps: float = 1e-10) -> sp.csr_matrix:
  """Positive semi-definite cotangent Laplacian (n, n), rows summing to zero."""
  v, f = check_mesh(verts, faces)
  n = v.shape[0]
  cots = _corner_cotangents(v, f, denom_eps)
  rows, cols, vals = [], [], []
  for c in range(3):
    # The corner c is opposite the edge (c+1, c+2).
    i, j = f[:, (c + 1) % 3], f[:, (c + 2) % 3]
    w = 0.5 * cots[:, c]
    rows += [i, j]
    cols += [j, i]
    vals += [-w, -w]
  rows, cols, vals = np.concatenate(rows), np.concatenate(cols), np.concatenate(vals)
  off = sp.csr_matrix((vals, (rows, cols)), shape=(n, n))
  off.sum_duplicates()
  diag = -np.asarray(off.sum(axis=1)).ravel()
  return (off + sp.diags(diag)).tocsr()


def barycentric_mass(verts, faces) -> np.ndarray:
  """Lumped mass vector: a third of each incident triangle's area."""
  v, f = check_mesh(verts, faces)
  area = face_areas(v, f)
  return np.bincount(f.ravel(), weights=np.repeat(area / 3.0, 3), minlength=v.shape[0])


def voronoi_mass(verts, faces) -> np.ndarray:
  """Lumped mass vector: Meyer et al.'s obtuse-aware mixed Voronoi areas."""
  v, f = check_mesh(verts, faces)
  area = face_areas(v, f)
  cots = _corner_cotangents(v, f, 1e-300)
  # cos < 0  <=>  cot < 0 (the sine is positive for a non-degenerate face).
  obtuse = cots < 0.0
  any_obtuse = obtuse.any(axis=1)
  part = np.empty(f.shape, np.float64)
  for c in range(3):
    p = v[f[:, c]]
    e_next = v[f[:, (c + 1) % 3]] - p      # edge to the next corner, opposite corner c+2
    e_prev = v[f[:, (c + 2) % 3]] - p      # edge to the previous corner, opposite c+1
    voronoi = (np.sum(e_next ** 2, 1) * cots[:, (c + 2) % 3]
               + np.sum(e_prev ** 2, 1) * cots[:, (c + 1) % 3]) / 8.0
    part[:, c] = np.where(any_obtuse, np.where(obtuse[:, c], area / 2.0, area / 4.0), voronoi)
  return np.bincount(f.ravel(), weights=part.ravel(), minlength=v.shape[0])


def vertex_normals(verts, faces, eps: float = 1e-12) -> np.ndarray:
  """Unit vertex normals: incident face normals weighted by face area (libigl default)."""
  v, f = check_mesh(verts, faces)
  fn = np.cross(v[f[:, 1]] - v[f[:, 0]], v[f[:, 2]] - v[f[:, 0]])   # 2·area·unit normal
  acc = np.zeros_like(v)
  for c in range(3):
    np.add.at(acc, f[:, c], fn)
  return acc / np.maximum(np.linalg.norm(acc, axis=1, keepdims=True), eps)


def edge_flaps(faces, num_vertices: int | None = None):
  """Unique edges and their flaps, like libigl's `edge_flaps`.

  Returns (E, EF, EI): E (e, 2) with E[:, 0] < E[:, 1]; EF[e, 0] the face whose oriented
  boundary holds E[e,0]→E[e,1], EF[e, 1] the one holding E[e,1]→E[e,0] (−1 if none);
  EI the corner (0..2) of that face opposite the edge (−1 if none).  Non-manifold edges
  or inconsistently oriented neighbours raise a ValueError.
  """
  f = np.asarray(faces, np.int64)
  if f.ndim != 2 or f.shape[1] != 3:
    raise ValueError(f'faces must be an (m, 3) array, got shape {f.shape}')
  n = int(f.max()) + 1 if num_vertices is None else int(num_vertices)
  m = f.shape[0]
  # Half-edge opposite corner c of face t: (f[t, c+1] -> f[t, c+2]).
  a = np.concatenate([f[:, (c + 1) % 3] for c in range(3)])
  b = np.concatenate([f[:, (c + 2) % 3] for c in range(3)])
  face_id = np.tile(np.arange(m), 3)
  corner = np.repeat(np.arange(3), m)
  lo, hi = np.minimum(a, b), np.maximum(a, b)
  keys, inverse = np.unique(lo * n + hi, return_inverse=True)
  slot = (a > b).astype(np.int64)                     # 0: lo->hi, 1: hi->lo
  count = np.zeros((keys.size, 2), np.int64)
  np.add.at(count, (inverse, slot), 1)
  if np.any(count > 1):
    bad = int(np.sum(np.any(count > 1, axis=1)))
    raise ValueError(f'{bad} edge(s) are shared by more than two faces or by two faces with '
                     'the same orientation: the mesh must be an oriented 2-manifold')
  ef = np.full((keys.size, 2), -1, np.int64)
  ei = np.full((keys.size, 2), -1, np.int64)
  ef[inverse, slot] = face_id
  ei[inverse, slot] = corner
  edges = np.stack([keys // n, keys % n], axis=1)
  return edges, ef, ei


def interior_hinges(faces, num_vertices: int | None = None) -> np.ndarray:
  """(h, 4) vertex indices (i, j, k, l) of every interior edge i–j.

  k is opposite the edge in the face holding i→j, l in the face holding j→i (the
  orientation the discrete-shells bending energy and pyshell use).
  """
  f = np.asarray(faces, np.int64)
  edges, ef, ei = edge_flaps(f, num_vertices)
  inner = np.all(ef >= 0, axis=1)
  e, ef, ei = edges[inner], ef[inner], ei[inner]
  k = f[ef[:, 0], ei[:, 0]]
  l = f[ef[:, 1], ei[:, 1]]
  return np.stack([e[:, 0], e[:, 1], k, l], axis=1)


def unique_edges(faces) -> np.ndarray:
  """(e, 2) sorted vertex pairs of every edge (no manifold requirement)."""
  f = np.asarray(faces, np.int64)
  e = np.concatenate([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]])
  return np.unique(np.sort(e, axis=1), axis=0)


def edge_lengths_graph(verts, faces) -> sp.csr_matrix:
  """Symmetric sparse (n, n) matrix of Euclidean mesh-edge lengths."""
  v, f = check_mesh(verts, faces)
  edges = unique_edges(f)
  length = np.linalg.norm(v[edges[:, 0]] - v[edges[:, 1]], axis=1)
  n = v.shape[0]
  return sp.csr_matrix((np.concatenate([length, length]),
                        (np.concatenate([edges[:, 0], edges[:, 1]]),
                         np.concatenate([edges[:, 1], edges[:, 0]]))), shape=(n, n))


def normalize_area(verts, faces) -> tuple[np.ndarray, float]:
  """Vertices centred at their mean and scaled to unit total area; returns (verts, scale)."""
  v, f = check_mesh(verts, faces)
  v = v - v.mean(axis=0)
  area = total_area(v, f)
  if not area > 0:
    raise ValueError('the mesh has zero total area; it cannot be normalised')
  scale = 1.0 / np.sqrt(area)
  return v * scale, float(scale)
