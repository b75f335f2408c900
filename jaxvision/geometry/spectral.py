"""Spectral bases of meshes: LBO, elastic and hybrid; projections and spectral masses.

Hybrid Functional Maps (Bastian et al., CVPR 2024), Sec. 4 (non-orthogonal bases in
functional maps) and upstream `utils/geometry_util.py::compute_operators`,
`utils/fmap_util.py::spectral_mass_computation / trim_basis` (facts, not code):

- LBO basis: `(L + ε I) φ = λ M φ`, L the cotangent Laplacian, M the barycentric lumped
  mass + ε·mean(M) (potpourri3d `vertex_areas`), ε = 1e-8, eigenvalues clipped at 0.
  The solve reuses `eigensolvers.smallest_eigenpairs` (ARPACK shift-invert, or a dense
  float64 `eigh` for small meshes); columns are sign-fixed by their largest entry;
- the elastic part uses a different mass (Voronoi) — `elastic.elastic_basis`;
- projection (mass-weighted pseudo-inverse) `Φ⁺ = pinv(√M Φ) √M = (ΦᵀMΦ)⁻¹ΦᵀM`; for an
  M-orthonormal LBO basis it equals `ΦᵀM`;
- spectral mass `M_k = ΦᵀMΦ` (k×k, not diagonal for the elastic basis), its square root
  `S = M_k^{1/2}` (symmetric, via eigh — upstream uses `sqrtm(...).real`) and `S⁻¹ = pinv(S)`.
  All are recomputed after truncation (`trim`), as upstream's `trim_basis`.
"""

from __future__ import annotations

import dataclasses

import jax
import numpy as np
import scipy.sparse as sp

from jaxvision.geometry import eigensolvers
from jaxvision.geometry import elastic
from jaxvision.geometry import mesh_operators

LBO_EPS = 1e-8


@dataclasses.dataclass(frozen=True)
class Basis:
  """One spectral basis with its mass and the derived operators (numpy float64)."""
  evals: np.ndarray        # (k,)
  evecs: np.ndarray        # (n, k)
  mass: np.ndarray         # (n,) lumped mass
  pinv: np.ndarray         # (k, n) Φ⁺
  spectral_mass: np.ndarray      # (k, k) M_k
  sqrt_spectral_mass: np.ndarray  # (k, k) S
  inv_sqrt_spectral_mass: np.ndarray  # (k, k) S⁻¹

  @property
  def k(self) -> int:
    return self.evecs.shape[1]


def mass_pinv(evecs, mass) -> np.ndarray:
  """Φ⁺ = pinv(√M Φ) √M, the M-weighted least-squares projection (k, n)."""
  phi = np.asarray(evecs, np.float64)
  sq = np.sqrt(np.asarray(mass, np.float64))
  return np.linalg.pinv(sq[:, None] * phi) * sq[None, :]


def sym_sqrt(mk) -> tuple[np.ndarray, np.ndarray]:
  """(S, S⁻¹) of a symmetric positive semi-definite matrix; S⁻¹ = pinv(S)."""
  a = np.asarray(mk, np.float64)
  w, u = np.linalg.eigh(0.5 * (a + a.T))
  w = np.clip(w, 0.0, None)
  s = (u * np.sqrt(w)[None, :]) @ u.T
  return s, np.linalg.pinv(s, hermitian=True)


def make_basis(evals, evecs, mass) -> Basis:
  """Wraps eigenpairs + mass with Φ⁺, M_k, M_k^{1/2} and its pseudo-inverse."""
  phi = np.asarray(evecs, np.float64)
  m = np.asarray(mass, np.float64).ravel()
  if phi.ndim != 2 or phi.shape[0] != m.shape[0]:
    raise ValueError(f'basis of shape {phi.shape} does not match a mass of {m.shape[0]} entries')
  lam = np.asarray(evals, np.float64).ravel()
  if lam.shape[0] != phi.shape[1]:
    raise ValueError(f'{lam.shape[0]} eigenvalues for {phi.shape[1]} basis functions')
  mk = phi.T @ (m[:, None] * phi)
  s, s_inv = sym_sqrt(mk)
  return Basis(evals=lam, evecs=phi, mass=m, pinv=mass_pinv(phi, m), spectral_mass=mk,
               sqrt_spectral_mass=s, inv_sqrt_spectral_mass=s_inv)


def trim(basis: Basis, k: int) -> Basis:
  """The first k functions, with the derived operators recomputed."""
  if not 0 <= k <= basis.k:
    raise ValueError(f'cannot keep {k} of {basis.k} basis functions')
  return make_basis(basis.evals[:k], basis.evecs[:, :k], basis.mass)


def lbo_eigenpairs(verts, faces, k: int, *, eps: float = LBO_EPS, solver: str = 'auto'):
  """(evals, evecs, mass) of the cotangent LBO with barycentric mass (upstream's)."""
  v, f = mesh_operators.check_mesh(verts, faces, 'LBO mesh')
  lap = mesh_operators.cotan_laplacian(v, f)
  mass = mesh_operators.barycentric_mass(v, f)
  mass = mass + eps * np.mean(mass)
  shifted = (lap + eps * sp.identity(lap.shape[0])).tocsr()
  with jax.enable_x64():
    vals, vecs = eigensolvers.smallest_eigenpairs(shifted, mass, k, solver=solver)
  return np.clip(vals, 0.0, None), vecs, mass


def lbo_basis(verts, faces, k: int, **kwargs) -> Basis:
  return make_basis(*lbo_eigenpairs(verts, faces, k, **kwargs))


def elastic_spectral_basis(verts, faces, k: int, bending_weight: float = 1e-2,
                           **kwargs) -> Basis:
  eb = elastic.elastic_basis(verts, faces, k, bending_weight, **kwargs)
  return make_basis(eb.evals, eb.evecs, eb.mass)


@dataclasses.dataclass(frozen=True)
class HybridBasis:
  """LBO part and elastic part, kept apart: the hybrid fmap is block-diagonal."""
  lbo: Basis
  elastic: Basis

  def trim(self, k_lbo: int, k_elastic: int) -> 'HybridBasis':
    return HybridBasis(lbo=trim(self.lbo, k_lbo), elastic=trim(self.elastic, k_elastic))


def hybrid_basis(verts, faces, k_lbo: int = 140, k_elastic: int = 60,
                 bending_weight: float = 1e-2) -> HybridBasis:
  """k_lbo LBO + k_elastic elastic eigenfunctions (upstream Hybrid ULRSSM: 140 + 60)."""
  return HybridBasis(lbo=lbo_basis(verts, faces, k_lbo),
                     elastic=elastic_spectral_basis(verts, faces, k_elastic, bending_weight))
