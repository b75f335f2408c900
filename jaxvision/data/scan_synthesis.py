"""Structured-light-like scans of real meshes, with injected local surface anomalies.

Builds MVTec 3D-AD-style organised point clouds (Bergmann et al., VISAPP 2022) from a
triangle mesh, for the Coupled Laplacian anomaly benchmark (Bastico et al., CVPR 2024,
Sec. 4.1) where the real dataset cannot be shipped:

- `sample_surface`: area-uniform random points on the mesh with smooth (barycentric
  vertex) outward normals — every scan samples the surface anew;
- `inject_anomaly`: displaces samples along their normals near a centre: 'bump' (+),
  'dent' (-), 'crack' (a narrow groove along a segment), 'hole' (a deep flat-bottomed
  pit); returns the displacement so masks mark where |disp| >= `mask_fraction` · depth;
- `random_rest_pose`: a random rotation about the vertical axis (any angle), a small
  tilt, an in-plane shift, the object resting on the table plane z = 0;
- `render_scan`: an orthographic top view: per pixel the highest sample's xyz (z-buffer),
  the table plane elsewhere, Gaussian depth noise, random dropped pixels (0, 0, 0).
"""

from __future__ import annotations

import dataclasses

import numpy as np

ANOMALY_KINDS = ('bump', 'dent', 'crack', 'hole')


@dataclasses.dataclass
class SurfaceSample:
  points: np.ndarray    # (n, 3)
  normals: np.ndarray   # (n, 3) unit, outward


def vertex_normals(vertices, faces) -> np.ndarray:
  """Area-weighted vertex normals, oriented outward (positive signed volume)."""
  v, f = np.asarray(vertices, np.float64), np.asarray(faces)
  a, b, c = v[f[:, 0]], v[f[:, 1]], v[f[:, 2]]
  fn = np.cross(b - a, c - a)
  signed_volume = np.sum(np.einsum('ij,ij->i', a, np.cross(b, c))) / 6.0
  if signed_volume < 0:
    fn = -fn
  vn = np.zeros_like(v)
  for i in range(3):
    np.add.at(vn, f[:, i], fn)
  norm = np.linalg.norm(vn, axis=1, keepdims=True)
  return vn / np.where(norm > 0, norm, 1.0)


def sample_surface(vertices, faces, n: int, rng: np.random.Generator) -> SurfaceSample:
  v, f = np.asarray(vertices, np.float64), np.asarray(faces)
  if f.size == 0:
    raise ValueError('sampling a surface needs triangles; the mesh has none')
  a, b, c = v[f[:, 0]], v[f[:, 1]], v[f[:, 2]]
  area = 0.5 * np.linalg.norm(np.cross(b - a, c - a), axis=1)
  if area.sum() <= 0:
    raise ValueError('the mesh has zero surface area (degenerate triangles only)')
  tri = rng.choice(len(f), size=n, p=area / area.sum())
  r1, r2 = rng.random(n), rng.random(n)
  s = np.sqrt(r1)
  w = np.stack([1 - s, s * (1 - r2), s * r2], 1)
  pts = w[:, 0:1] * a[tri] + w[:, 1:2] * b[tri] + w[:, 2:3] * c[tri]
  vn = vertex_normals(v, f)
  nrm = sum(w[:, i:i + 1] * vn[f[tri, i]] for i in range(3))
  nrm /= np.maximum(np.linalg.norm(nrm, axis=1, keepdims=True), 1e-12)
  return SurfaceSample(pts, nrm)


def _bump_profile(rho, radius):
  x = np.clip(rho / radius, 0.0, 1.0)
  return (1.0 - x ** 2) ** 2


def anomaly_displacement(points, kind: str, centre, direction, radius: float,
                         depth: float) -> np.ndarray:
  """Signed normal displacement of each point (positive = outward)."""
  if kind not in ANOMALY_KINDS:
    raise ValueError(f'anomaly kind {kind!r}; expected one of {ANOMALY_KINDS}')
  p = np.asarray(points) - np.asarray(centre)
  if kind in ('bump', 'dent'):
    prof = _bump_profile(np.linalg.norm(p, axis=1), radius)
    return depth * prof * (1.0 if kind == 'bump' else -1.0)
  if kind == 'crack':
    e = np.asarray(direction) / np.linalg.norm(direction)
    along = np.clip(p @ e, -1.5 * radius, 1.5 * radius)
    delta = np.linalg.norm(p - along[:, None] * e[None, :], axis=1)
    return -depth * _bump_profile(delta, 0.3 * radius)
  rho = np.linalg.norm(p, axis=1)
  return np.where(rho < 0.6 * radius, -2.0 * depth, 0.0)


def inject_anomaly(sample: SurfaceSample, kind: str, centre, direction, radius: float,
                   depth: float):
  """(displaced SurfaceSample, displacement per point)."""
  disp = anomaly_displacement(sample.points, kind, centre, direction, radius, depth)
  return SurfaceSample(sample.points + disp[:, None] * sample.normals, sample.normals), disp


def rotation_about(axis, angle: float) -> np.ndarray:
  axis = np.asarray(axis, np.float64) / np.linalg.norm(axis)
  k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
  return np.eye(3) + np.sin(angle) * k + (1 - np.cos(angle)) * k @ k


def random_rest_pose(rng: np.random.Generator, *, max_tilt_deg: float = 3.0,
                     max_shift: float = 0.0):
  """(rotation, in-plane shift): any yaw, a small tilt about a random horizontal axis."""
  yaw = rotation_about([0, 0, 1], rng.uniform(0, 2 * np.pi))
  phi = rng.uniform(0, 2 * np.pi)
  tilt = rotation_about([np.cos(phi), np.sin(phi), 0.0],
                        np.radians(rng.uniform(0, max_tilt_deg)))
  shift = np.concatenate([rng.uniform(-max_shift, max_shift, 2), [0.0]])
  return tilt @ yaw, shift


def place(points, rotation, shift) -> np.ndarray:
  """Rotate about the centroid, shift in plane, rest on the table (min z = 0)."""
  p = np.asarray(points)
  c = p.mean(0)
  out = (p - c) @ np.asarray(rotation).T + np.array([c[0], c[1], 0.0]) + shift
  out[:, 2] -= out[:, 2].min()
  return out


def render_scan(points, *, resolution: int, half_width: float, centre_xy=(0.0, 0.0),
                values=None, noise: float = 0.0, dropout: float = 0.0,
                rng: np.random.Generator | None = None):
  """Orthographic top view of `points` over the plane z = 0.

  Returns (xyz (R, R, 3) float32, value per pixel of the visible point or 0, object
  mask).  Pixels without a sample of the object see the table plane.
  """
  rng = rng or np.random.default_rng(0)
  p = np.asarray(points, np.float64)
  cx, cy = centre_xy
  pix = 2 * half_width / resolution
  col = np.floor((p[:, 0] - (cx - half_width)) / pix).astype(np.int64)
  row = np.floor(((cy + half_width) - p[:, 1]) / pix).astype(np.int64)
  inside = (col >= 0) & (col < resolution) & (row >= 0) & (row < resolution)
  if not inside.any():
    raise ValueError('no point of the object falls inside the scanned area')
  flat = row[inside] * resolution + col[inside]
  idx = np.flatnonzero(inside)
  order = np.lexsort((-p[idx, 2], flat))   # per pixel, highest z first
  flat_sorted = flat[order]
  first = np.concatenate([[True], flat_sorted[1:] != flat_sorted[:-1]])
  vis_pixel, vis_point = flat_sorted[first], idx[order][first]
  xyz = np.zeros((resolution * resolution, 3))
  rr, cc = np.divmod(np.arange(resolution * resolution), resolution)
  xyz[:, 0] = cx - half_width + (cc + 0.5) * pix
  xyz[:, 1] = cy + half_width - (rr + 0.5) * pix
  xyz[vis_pixel] = p[vis_point]
  xyz[:, 2] += noise * rng.standard_normal(len(xyz))
  val = np.zeros(resolution * resolution)
  if values is not None:
    val[vis_pixel] = np.asarray(values)[vis_point]
  mask = np.zeros(resolution * resolution, bool)
  mask[vis_pixel] = True
  if dropout > 0:
    xyz[rng.random(len(xyz)) < dropout] = 0.0
  shape = (resolution, resolution)
  return xyz.reshape(shape + (3,)).astype(np.float32), val.reshape(shape), mask.reshape(shape)


def smooth_deformation(vertices, rng: np.random.Generator, *, scale_jitter: float,
                       warp: float, n_bumps: int = 3, width: float = 0.3) -> np.ndarray:
  """"Another individual of the same kind": anisotropic scale (1 ± scale_jitter per
  axis) plus `n_bumps` Gaussian-RBF displacement fields of amplitude ~`warp` and width
  `width` (both × the object's size) — smooth, global shape variation."""
  v = np.asarray(vertices, np.float64)
  size = float(np.max(np.ptp(v, axis=0)))
  c = v.mean(0)
  out = (v - c) * (1.0 + rng.uniform(-scale_jitter, scale_jitter, 3)) + c
  for _ in range(n_bumps):
    centre = v[rng.integers(len(v))]
    amp = rng.normal(size=3) * warp * size / np.sqrt(3)
    out += amp[None, :] * np.exp(-np.sum((v - centre) ** 2, 1) / (2 * (width * size) ** 2))[:, None]
  return out
