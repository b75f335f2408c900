"""Elastic basis: vibration modes of the thin-shell Hessian, projected on vertex normals.

Hybrid Functional Maps (Bastian et al., CVPR 2024), Sec. 3 and upstream
`xieyizheng/hybridfmaps utils/geometry_util.py::computeEV / computeElasticBasis`
(adapted there from `flrneha/ElasticBasisForSpectralMatching`; facts, not code):

- generalized eigenproblem `(H + ε I) v = λ M₃ v`, H the rest-state shell Hessian
  (`shell_energy.shell_hessian`, coordinate-blocked DOFs), `M₃ = blockdiag(M, M, M)` with
  M libigl's Voronoi lumped mass, ε = 1e-6 ("the Hessian is poorly conditioned"); ARPACK
  shift-invert at σ = 0 for the k + 6 smallest pairs, then the first 6 (the rigid-motion
  kernel) are dropped.  Small problems use a dense float64 `scipy.linalg.eigh`;
- sign convention: every mode whose first entry (x of vertex 0) is negative is negated.
  Upstream also negates that mode's eigenvalue (`vals[ind] *= -1`), so its cached
  eigenvalues can be negative; `negate_flipped_eigenvalues=True` reproduces that quirk,
  the default keeps eigenvalues positive (Hybrid ULRSSM takes `abs` of them anyway);
- vector modes (3n) become scalar functions by projection on the unit vertex normals
  (area-weighted, libigl's default): `φ_j = n_x v_j + n_y v_{j+n} + n_z v_{j+2n}`, i.e.
  `Pᵀ V` with P (3n × n);
- `bending_weight` 1e-2 (hybridfmaps' preprocessing and yaml; the original Elastic Basis
  code uses 1e-4).  Scale matters: upstream normalises meshes to unit area first
  (`mesh_operators.normalize_area`); this function does not rescale.
"""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np
import scipy.linalg
import scipy.sparse as sp
from scipy.sparse import csgraph
from scipy.sparse import linalg as spla

from jaxvision.geometry import mesh_operators
from jaxvision.geometry import shell_energy

NUM_RIGID_MODES = 6


@dataclasses.dataclass(frozen=True)
class ElasticBasis:
  evals: np.ndarray      # (k,) eigenvalues (ascending |λ|)
  evecs: np.ndarray      # (n, k) normal-projected scalar basis
  mass: np.ndarray       # (n,) Voronoi lumped mass used in the eigenproblem
  vectors: np.ndarray    # (3n, k) vector modes, coordinate-blocked, M₃-orthonormal
  normals: np.ndarray    # (n, 3) unit vertex normals


def normal_projection(normals) -> sp.csr_matrix:
  """P (3n, n): column j holds the normal of vertex j in rows j, j + n, j + 2n."""
  nrm = np.asarray(normals, np.float64)
  n = nrm.shape[0]
  rows = np.concatenate([np.arange(n), np.arange(n) + n, np.arange(n) + 2 * n])
  cols = np.tile(np.arange(n), 3)
  return sp.csr_matrix((nrm.T.ravel(), (rows, cols)), shape=(3 * n, n))


def generalized_eigenpairs(hess, mass3, k: int, *, eps: float = 1e-6,
                           dense_max_dofs: int = 3000, seed: int = 0):
  """The k smallest pairs of `(H + εI) v = λ diag(mass3) v`, ascending, M₃-orthonormal."""
  dofs = hess.shape[0]
  if not 1 <= k < dofs:
    raise ValueError(f'asked for {k} eigenpairs of a {dofs}-DOF problem')
  a = (sp.csc_matrix(hess, dtype=np.float64) + eps * sp.identity(dofs, format='csc'))
  m = np.asarray(mass3, np.float64)
  if m.shape != (dofs,) or np.any(~np.isfinite(m)) or np.any(m <= 0):
    raise ValueError('the mass must be a positive vector with one entry per DOF '
                     f'(got shape {m.shape}, min {np.min(m) if m.size else "n/a"})')
  if dofs <= dense_max_dofs or k >= dofs - 1:
    w = 1.0 / np.sqrt(m)    # whitened standard problem, then back to v = M^{-1/2} u
    c = a.toarray() * w[:, None] * w[None, :]
    vals, vecs = scipy.linalg.eigh(0.5 * (c + c.T), subset_by_index=[0, k - 1])
    vecs = vecs * w[:, None]
  else:
    v0 = np.random.default_rng(seed).uniform(-1, 1, dofs)
    vals, vecs = spla.eigsh(a, k=k, M=sp.diags(m).tocsc(), sigma=0.0, which='LM', v0=v0)
  order = np.argsort(vals)
  vals, vecs = vals[order], vecs[:, order]
  # M₃-normalise in float64 (ARPACK's normalisation is only as good as its tolerance).
  vecs = vecs / np.sqrt(np.sum(vecs ** 2 * m[:, None], axis=0))
  return vals, vecs


def elastic_basis(verts, faces, k: int = 200, bending_weight: float = 1e-2, *,
                  eps: float = 1e-6, negate_flipped_eigenvalues: bool = False,
                  dense_max_dofs: int = 3000) -> ElasticBasis:
  """The first k non-rigid elastic eigenfunctions of a closed or open triangle mesh."""
  v, f = mesh_operators.check_mesh(verts, faces, 'elastic_basis mesh')
  n = v.shape[0]
  if not 1 <= k <= 3 * n - NUM_RIGID_MODES - 1:
    raise ValueError(f'k={k} elastic modes: need 1 <= k <= 3n - 7 = {3 * n - 7} for a '
                     f'{n}-vertex mesh')
  mass = mesh_operators.voronoi_mass(v, f)
  if np.any(mass <= 0):
    raise ValueError(f'{int(np.sum(mass <= 0))} vertex/vertices belong to no face (zero mass); '
                     'remove unreferenced vertices before computing the elastic basis')
  n_comp, _ = csgraph.connected_components(mesh_operators.edge_lengths_graph(v, f),
                                           directed=False)
  if n_comp > 1:
    warnings.warn(f'the mesh has {n_comp} connected components: its shell Hessian has '
                  f'{6 * n_comp} rigid modes, but only {NUM_RIGID_MODES} are dropped (as upstream)')
  hess = shell_energy.shell_hessian(v, f, bending_weight)
  vals, vecs = generalized_eigenpairs(hess, np.tile(mass, 3), k + NUM_RIGID_MODES, eps=eps,
                                      dense_max_dofs=dense_max_dofs)
  vals, vecs = vals[NUM_RIGID_MODES:], vecs[:, NUM_RIGID_MODES:]
  flip = vecs[0, :] < 0
  vecs[:, flip] *= -1.0
  if negate_flipped_eigenvalues:
    vals = np.where(flip, -vals, vals)
  normals = mesh_operators.vertex_normals(v, f)
  scalar = normal_projection(normals).T @ vecs
  return ElasticBasis(evals=vals, evecs=np.asarray(scalar), mass=mass, vectors=vecs,
                      normals=normals)
