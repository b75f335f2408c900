"""Functional-map solvers from descriptors, for orthonormal (LBO) and non-orthogonal bases.

Hybrid Functional Maps (Bastian et al., CVPR 2024), Sec. 4, and upstream
`networks/fmap_network.py` (facts, not code).  Conventions: `A = Φx⁺ Fx`, `B = Φy⁺ Fy`
(k × c descriptor coefficients); C maps x-coefficients to y-coefficients (k_y × k_x).

- `resolvent_mask` (DPFM): eigenvalues scaled by max(λx, λy), `r = λ̃^γ/(λ̃^{2γ}+1)`,
  `i = 1/(λ̃^{2γ}+1)`, `D_ij = (r_y,i − r_x,j)² + (i_y,i − i_x,j)²`;
- `regularized_fmap` (`RegularizedFMNet`, λ = 100, γ = 0.5): row by row,
  `C_i = (AAᵀ + λ diag(D_i))⁻¹ A B_iᵀ` (vmapped); `standard_fmap` (`StandardFMNet`,
  λ = 1e-3) uses `D_ij = (λx_j − λy_i)²`;
- `elastic_fmap` (`ExpandedResolventFMNet`, the yaml's λ = 50, γ = 0.5): the
  Hilbert–Schmidt data term `‖S_y(CA − B)‖²` written as `kron(Aᵀ, S_y) vec C`
  (column-major vec) plus `λ (Δ_reᵀΔ_re + Δ_imᵀΔ_im)` with
  `Δ = kron(S_x⁻¹, S_y diag(r_y)) − kron(diag(r_x) S_x⁻¹, S_y)`, one dense k²×k² solve;
  `regularizer='standard'` (`ExpandedStandardFMNet`, λ = 1e-3) uses diag(λ) instead of
  the resolvent terms.  S = M_k^{1/2} (spectral.sym_sqrt).

All functions are jittable JAX (float32 or float64 as given).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def resolvent_terms(evals_x, evals_y, gamma: float = 0.5):
  scale = jnp.maximum(jnp.max(evals_x), jnp.max(evals_y))
  gx = (evals_x / scale) ** gamma
  gy = (evals_y / scale) ** gamma
  re = lambda g: g / (g ** 2 + 1.0)
  im = lambda g: 1.0 / (g ** 2 + 1.0)
  return (re(gx), im(gx)), (re(gy), im(gy))


def resolvent_mask(evals_x, evals_y, gamma: float = 0.5):
  """(k_y, k_x) DPFM resolvent penalty; zero on the diagonal for equal spectra."""
  (rx, ix), (ry, iy) = resolvent_terms(evals_x, evals_y, gamma)
  return (ry[:, None] - rx[None, :]) ** 2 + (iy[:, None] - ix[None, :]) ** 2


def standard_mask(evals_x, evals_y):
  return (evals_y[:, None] - evals_x[None, :]) ** 2


def _rowwise_solve(a, b, mask, lmbda):
  aat = a @ a.T
  bat = b @ a.T

  def row(d_i, rhs_i):
    return jnp.linalg.solve(aat + lmbda * jnp.diag(d_i), rhs_i)

  return jax.vmap(row)(mask, bat)


def regularized_fmap(feat_x, feat_y, evals_x, evals_y, pinv_x, pinv_y, *,
                     lmbda: float = 100.0, gamma: float = 0.5):
  """C_xy (k_y, k_x) with the resolvent mask (DPFM / ULRSSM LB solver)."""
  a, b = pinv_x @ feat_x, pinv_y @ feat_y
  return _rowwise_solve(a, b, resolvent_mask(evals_x, evals_y, gamma), lmbda)


def standard_fmap(feat_x, feat_y, evals_x, evals_y, pinv_x, pinv_y, *,
                  lmbda: float = 1e-3):
  """C_xy (k_y, k_x) with the Laplacian-commutativity mask (GeomFmaps solver)."""
  a, b = pinv_x @ feat_x, pinv_y @ feat_y
  return _rowwise_solve(a, b, standard_mask(evals_x, evals_y), lmbda)


def vec(x):
  """Column-major vectorisation."""
  return x.T.reshape(-1)


def unvec(v, rows: int, cols: int):
  return v.reshape(cols, rows).T


def elastic_fmap(feat_x, feat_y, evals_x, evals_y, pinv_x, pinv_y, sqrt_mk_x, sqrt_mk_y, *,
                 lmbda: float = 50.0, gamma: float = 0.5, regularizer: str = 'resolvent'):
  """C_xy (k, k) in a non-orthogonal (elastic) basis: the Kronecker HS solve."""
  if regularizer not in ('resolvent', 'standard'):
    raise ValueError(f"regularizer {regularizer!r}; expected 'resolvent' or 'standard'")
  a = pinv_x @ feat_x
  b = sqrt_mk_y @ (pinv_y @ feat_y)
  k = a.shape[0]
  if pinv_y.shape[0] != k:
    raise ValueError(f'the elastic solve needs equal basis sizes, got {k} and {pinv_y.shape[0]}')
  at_s = jnp.kron(a.T, sqrt_mk_y)
  first = at_s.T @ at_s
  rhs = at_s.T @ vec(b)
  inv_sx = jnp.linalg.inv(sqrt_mk_x)
  eye = jnp.eye(k, dtype=a.dtype)
  if regularizer == 'resolvent':
    (rx, ix), (ry, iy) = resolvent_terms(evals_x, evals_y, gamma)
    second = 0.0
    for tx, ty in ((rx, ry), (ix, iy)):
      delta = (jnp.kron(eye @ inv_sx, sqrt_mk_y @ jnp.diag(ty))
               - jnp.kron(jnp.diag(tx) @ inv_sx, sqrt_mk_y))
      second = second + delta.T @ delta
  else:
    delta = (jnp.kron(jnp.diag(evals_x) @ inv_sx, sqrt_mk_y)
             - jnp.kron(inv_sx, sqrt_mk_y @ jnp.diag(evals_y)))
    second = delta.T @ delta
  return unvec(jnp.linalg.solve(first + lmbda * second, rhs), k, k)
