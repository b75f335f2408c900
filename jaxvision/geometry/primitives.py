"""Closed-form triangle meshes (icosphere, torus, flat grid) for tests, demos, benchmarks.

Used by the Hybrid Functional Maps tests (Bastian et al., CVPR 2024, Sec. 3): a closed
mesh whose shell Hessian has exactly the 6 rigid modes, spheres whose Laplace–Beltrami
spectrum is known (l(l+1)/R², multiplicity 2l+1), flat patches for the cotangent
Laplacian.  All faces are consistently oriented (outward normals for closed surfaces).
"""

from __future__ import annotations

import numpy as np


def icosahedron() -> tuple[np.ndarray, np.ndarray]:
  t = (1.0 + np.sqrt(5.0)) / 2.0
  v = np.array([[-1, t, 0], [1, t, 0], [-1, -t, 0], [1, -t, 0],
                [0, -1, t], [0, 1, t], [0, -1, -t], [0, 1, -t],
                [t, 0, -1], [t, 0, 1], [-t, 0, -1], [-t, 0, 1]], np.float64)
  f = np.array([[0, 11, 5], [0, 5, 1], [0, 1, 7], [0, 7, 10], [0, 10, 11],
                [1, 5, 9], [5, 11, 4], [11, 10, 2], [10, 7, 6], [7, 1, 8],
                [3, 9, 4], [3, 4, 2], [3, 2, 6], [3, 6, 8], [3, 8, 9],
                [4, 9, 5], [2, 4, 11], [6, 2, 10], [8, 6, 7], [9, 8, 1]], np.int64)
  return v / np.linalg.norm(v, axis=1, keepdims=True), f


def icosphere(subdivisions: int = 3, radius: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
  """Loop-style 1→4 subdivision of the icosahedron, vertices pushed to the sphere.

  10·4^s + 2 vertices (s = 3: 642, s = 4: 2562, s = 5: 10242).
  """
  if subdivisions < 0:
    raise ValueError(f'subdivisions must be >= 0, got {subdivisions}')
  v, f = icosahedron()
  for _ in range(subdivisions):
    e = np.concatenate([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]])
    e_sorted = np.sort(e, axis=1)
    uniq, inv = np.unique(e_sorted, axis=0, return_inverse=True)
    mids = v[uniq[:, 0]] + v[uniq[:, 1]]
    mids /= np.linalg.norm(mids, axis=1, keepdims=True)
    mid = (inv.ravel() + len(v)).reshape(3, -1).T      # (m, 3): mids of edges 01, 12, 20
    a, b, c = f[:, 0], f[:, 1], f[:, 2]
    ab, bc, ca = mid[:, 0], mid[:, 1], mid[:, 2]
    f = np.concatenate([np.stack([a, ab, ca], 1), np.stack([b, bc, ab], 1),
                        np.stack([c, ca, bc], 1), np.stack([ab, bc, ca], 1)])
    v = np.concatenate([v, mids])
  return v * radius, f


def torus(n_major: int = 100, n_minor: int = 50, major: float = 1.0,
          minor: float = 0.35) -> tuple[np.ndarray, np.ndarray]:
  """A closed torus of n_major·n_minor vertices (genus 1)."""
  if n_major < 3 or n_minor < 3:
    raise ValueError(f'a torus needs n_major, n_minor >= 3, got {n_major}, {n_minor}')
  u = 2 * np.pi * np.arange(n_major) / n_major
  w = 2 * np.pi * np.arange(n_minor) / n_minor
  uu, ww = np.meshgrid(u, w, indexing='ij')
  r = major + minor * np.cos(ww)
  v = np.stack([r * np.cos(uu), r * np.sin(uu), minor * np.sin(ww)], -1).reshape(-1, 3)
  i, j = np.meshgrid(np.arange(n_major), np.arange(n_minor), indexing='ij')
  p = i * n_minor + j
  q = ((i + 1) % n_major) * n_minor + j
  r_ = ((i + 1) % n_major) * n_minor + (j + 1) % n_minor
  s = i * n_minor + (j + 1) % n_minor
  f = np.concatenate([np.stack([p, q, r_], -1).reshape(-1, 3),
                      np.stack([p, r_, s], -1).reshape(-1, 3)])
  return v, f


def grid(nx: int = 5, ny: int = 5, size: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
  """A flat (z = 0) square patch of nx·ny vertices, two triangles per cell."""
  if nx < 2 or ny < 2:
    raise ValueError(f'a grid needs nx, ny >= 2, got {nx}, {ny}')
  x, y = np.meshgrid(np.linspace(0, size, nx), np.linspace(0, size, ny), indexing='ij')
  v = np.stack([x, y, np.zeros_like(x)], -1).reshape(-1, 3)
  i, j = np.meshgrid(np.arange(nx - 1), np.arange(ny - 1), indexing='ij')
  p = i * ny + j
  q = (i + 1) * ny + j
  r = (i + 1) * ny + j + 1
  s = i * ny + j + 1
  f = np.concatenate([np.stack([p, q, r], -1).reshape(-1, 3),
                      np.stack([p, r, s], -1).reshape(-1, 3)])
  return v, f


def bumpy_sphere(subdivisions: int = 2) -> tuple[np.ndarray, np.ndarray]:
  """An icosphere deformed by a smooth radial field without symmetries.

  Its Laplace–Beltrami and elastic spectra are simple (no repeated eigenvalues), so
  eigenfunctions are defined up to sign, unlike on the round sphere.
  """
  v, f = icosphere(subdivisions)
  x, y, z = v.T
  r = 1 + 0.2 * np.sin(2 * x + 0.3) + 0.15 * np.cos(3 * y - 1) + 0.1 * x * z
  return v * r[:, None], f
