"""Discrete elastic thin-shell energy (membrane + bending) and its rest-state Hessian, in JAX.

Hybrid Functional Maps (Bastian et al., CVPR 2024), Sec. 3 ("elastic basis"), after
Hartwig et al., "Elastic Basis for Spectral Shape Correspondence" (SIGGRAPH 2023).  The
energy is pyshell's (gitlab numod/shell-energy) as its PyTorch port states it
(`Louis-Pujol/shell-energy-pytorch pytorch_shell/*.py`; facts, not code):

- membrane, per face (Heeren et al. 2012, Eq. 8), μ = λ = 1, G = ḡ⁻¹g:
  `W = Ā [μ/2 tr G + λ/4 det G − (μ/2 + λ/4) log det G − μ − λ/4]`, det G = A²/Ā²,
  `Ā · tr G = trace / (4Ā)` with the mixed `trace = |e_i|²(ē_j·ē_k) + |e_j|²(ē_k·ē_i)
  − |e_k|²(ē_i·ē_j)` (deformed squared lengths, undeformed dot products),
  e_i = c − b, e_j = a − c, e_k = a − b;
- bending, per interior edge e = (i, j) with opposite vertices k, l (Heeren et al.
  2014, "discrete shells"): `3 (θ − θ̄)² |ē|² / (Ā_k + Ā_l)`, length and areas
  undeformed, θ = atan2((n_k × n_l)·ê, n_k·n_l), n_k = (p_k − p_j) × (p_i − p_k),
  n_l = (p_l − p_i) × (p_j − p_l);
- energy = membrane + bending_weight · bending.

`shell_hessian` is the Hessian w.r.t. the deformed positions at the rest state
(pyshell's `shell_deformed_hessian(v, v, ...)`): per-element `jax.hessian` blocks
(9×9 per face, 12×12 per hinge, vmapped, float64) scatter-added into a sparse 3n×3n
matrix in coordinate-blocked DOF order `[x_1..x_n, y_1..y_n, z_1..z_n]`.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import scipy.sparse as sp

from jaxvision.geometry import mesh_operators

MU = 1.0
LAMBDA = 1.0


def membrane_face(x_def, x_rest, mu: float = MU, lam: float = LAMBDA):
  """Membrane energy of one triangle; x_* are (3, 3) corner positions (a, b, c)."""
  def edges(x):
    a, b, c = x[0], x[1], x[2]
    return c - b, a - c, a - b
  ei, ej, ek = edges(x_def)
  area_sq = jnp.sum(jnp.cross(ei, ej) ** 2) / 4.0           # A²
  ui, uj, uk = edges(x_rest)
  area_rest = jnp.sqrt(jnp.sum(jnp.cross(ui, uj) ** 2) / 4.0)  # Ā
  trace = (jnp.sum(ei ** 2) * jnp.dot(uj, uk) + jnp.sum(ej ** 2) * jnp.dot(uk, ui)
           - jnp.sum(ek ** 2) * jnp.dot(ui, uj))
  return ((mu * trace / 8.0 + lam * area_sq / 4.0) / area_rest
          - area_rest * ((mu / 2.0 + lam / 4.0) * jnp.log(area_sq / area_rest ** 2)
                         + mu + lam / 4.0))


def dihedral_angle(x):
  """Signed dihedral angle of a hinge (p_i, p_j, p_k, p_l), 0 when flat."""
  pi, pj, pk, pl = x[0], x[1], x[2], x[3]
  nk = jnp.cross(pk - pj, pi - pk)
  nl = jnp.cross(pl - pi, pj - pl)
  edge = pj - pi
  edge = edge / jnp.linalg.norm(edge)
  return jnp.arctan2(jnp.dot(jnp.cross(nk, nl), edge), jnp.dot(nk, nl))


def bending_hinge(x_def, x_rest):
  """Bending energy of one hinge; x_* are (4, 3) positions (i, j, k, l)."""
  pi, pj, pk, pl = x_rest[0], x_rest[1], x_rest[2], x_rest[3]
  area_k = jnp.linalg.norm(jnp.cross(pk - pj, pi - pk)) / 2.0
  area_l = jnp.linalg.norm(jnp.cross(pl - pi, pj - pl)) / 2.0
  length_sq = jnp.sum((pj - pi) ** 2)
  delta = dihedral_angle(x_def) - dihedral_angle(x_rest)
  return 3.0 * delta ** 2 * length_sq / (area_k + area_l)


def _elements(verts, faces):
  v, f = mesh_operators.check_mesh(verts, faces, 'shell mesh')
  hinges = mesh_operators.interior_hinges(f, v.shape[0])
  return v, f, hinges


def shell_energy(x_def, x_rest, faces, hinges, bending_weight: float):
  """Total energy (a JAX scalar) of deformed positions x_def (n, 3) against x_rest."""
  faces = jnp.asarray(faces)
  hinges = jnp.asarray(hinges)
  membrane = jnp.sum(jax.vmap(membrane_face)(x_def[faces], x_rest[faces]))
  if hinges.shape[0] == 0:
    return membrane
  bending = jnp.sum(jax.vmap(bending_hinge)(x_def[hinges], x_rest[hinges]))
  return membrane + bending_weight * bending


def shell_energy_terms(verts_def, verts_rest, faces) -> dict[str, float]:
  """Membrane and (unweighted) bending energies in float64, for inspection and tests."""
  v, f, hinges = _elements(verts_rest, faces)
  x = np.asarray(verts_def, np.float64)
  if x.shape != v.shape:
    raise ValueError(f'deformed vertices have shape {x.shape}, rest vertices {v.shape}')
  with jax.enable_x64():
    xd, xr = jnp.asarray(x), jnp.asarray(v)
    mem = jnp.sum(jax.vmap(membrane_face)(xd[f], xr[f]))
    bend = (jnp.sum(jax.vmap(bending_hinge)(xd[hinges], xr[hinges])) if len(hinges)
            else jnp.zeros(()))
    return {'membrane': float(mem), 'bending': float(bend)}


CHUNK = 2048   # elements per jitted call: one compilation serves every mesh size


@jax.jit
def _face_hessians(x_rest):
  return jax.vmap(jax.hessian(membrane_face))(x_rest, x_rest)


@jax.jit
def _hinge_hessians(x_rest):
  return jax.vmap(jax.hessian(bending_hinge))(x_rest, x_rest)


def _chunked(fn, x):
  """fn over fixed-size chunks of x (padded by repeating the first element)."""
  e = x.shape[0]
  pad = (-e) % CHUNK
  xp = np.concatenate([x, np.broadcast_to(x[:1], (pad,) + x.shape[1:])]) if pad else x
  out = [np.asarray(fn(jnp.asarray(xp[s:s + CHUNK]))) for s in range(0, len(xp), CHUNK)]
  return np.concatenate(out)[:e]


def _scatter(blocks, elements, n):
  """(e, p, 3, p, 3) element blocks -> COO triplets in coordinate-blocked DOF order."""
  e, p = elements.shape
  # Global DOF of (element, local vertex a, coordinate c) = c * n + vertex.
  dof = (np.arange(3)[None, None, :] * n + elements[:, :, None]).reshape(e, 3 * p)
  rows = np.broadcast_to(dof[:, :, None], (e, 3 * p, 3 * p)).ravel()
  cols = np.broadcast_to(dof[:, None, :], (e, 3 * p, 3 * p)).ravel()
  return rows, cols, np.asarray(blocks, np.float64).reshape(e, 3 * p, 3 * p).ravel()


def shell_hessian(verts, faces, bending_weight: float = 1e-2) -> sp.csr_matrix:
  """Rest-state Hessian of the shell energy: sparse symmetric (3n, 3n), float64."""
  if not bending_weight >= 0:
    raise ValueError(f'bending_weight must be >= 0, got {bending_weight}')
  v, f, hinges = _elements(verts, faces)
  n = v.shape[0]
  areas = mesh_operators.face_areas(v, f)
  degenerate = areas <= 1e-14 * max(float(np.max(areas)), 1e-300)
  if np.any(degenerate):
    raise ValueError(f'{int(np.sum(degenerate))} face(s) of the shell mesh have zero area: '
                     'the membrane energy (log det G) is undefined there')
  with jax.enable_x64():
    hf = _chunked(_face_hessians, v[f])
    parts = [_scatter(hf, f, n)]
    if len(hinges) and bending_weight > 0:
      hb = _chunked(_hinge_hessians, v[hinges])
      r, c, d = _scatter(hb, hinges, n)
      parts.append((r, c, bending_weight * d))
  rows = np.concatenate([p[0] for p in parts])
  cols = np.concatenate([p[1] for p in parts])
  vals = np.concatenate([p[2] for p in parts])
  h = sp.csr_matrix((vals, (rows, cols)), shape=(3 * n, 3 * n))
  h.sum_duplicates()
  return (0.5 * (h + h.T)).tocsr()
