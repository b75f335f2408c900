"""Affine Coherent Point Drift in JAX (Myronenko & Song, TPAMI 2010, Sec. 5 / Fig. 3).

Coupled Laplacian (Bastico et al., CVPR 2024), upstream `model/ad.py`: after the global
rigid registration, the good reference ("source", Y, M points) is refined onto the test
cloud ("target", X, N points) by probreg's affine CPD on 3,000-point subsamples, and the
fitted affine map is applied to the whole source.  This is that EM, written in JAX:

  E-step  P_mn = exp(-|x_n - (B y_m + t)|² / 2σ²) / (Σ_k exp(-|x_n - (B y_k + t)|² / 2σ²) + c),
          c = (2πσ²)^{D/2} · w/(1-w) · M/N            (in log space: no underflow)
  M-step  N_P = 1ᵀP1,  μ_x = XᵀPᵀ1/N_P,  μ_y = YᵀP1/N_P,  X̂ = X - μ_x, Ŷ = Y - μ_y,
          B = (X̂ᵀPᵀŶ)(Ŷᵀ d(P1) Ŷ)⁻¹,  t = μ_x - B μ_y,
          σ² = (tr(X̂ᵀ d(Pᵀ1) X̂) - tr(X̂ᵀPᵀŶ Bᵀ)) / (N_P D).

Defaults follow probreg's AffineCPD (w = 0, 50 iterations, tol 1e-3 on the change of the
EM objective's σ-term).  Coordinates are centred and scaled before the float32 EM.
"""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np

from jaxvision.geometry import graphs


@dataclasses.dataclass
class AffineTransform:
  matrix: np.ndarray        # (3, 3)
  translation: np.ndarray   # (3,)
  sigma2: float = float('nan')
  iterations: int = 0

  def apply(self, points) -> np.ndarray:
    return np.asarray(points) @ self.matrix.T + self.translation


@functools.partial(jax.jit, static_argnames=('max_iter',))
def _affine_cpd(x, y, w, tol, max_iter):
  n, d = x.shape
  m = y.shape[0]
  sigma2 = jnp.sum((x[None, :, :] - y[:, None, :]) ** 2) / (d * m * n)

  def em(state):
    b, t, s2, _, it = state
    ty = y @ b.T + t
    d2 = jnp.sum((x[None, :, :] - ty[:, None, :]) ** 2, axis=-1)    # (M, N)
    logk = -d2 / (2.0 * s2)
    log_c = jnp.where(w > 0, 0.5 * d * jnp.log(2 * jnp.pi * s2) + jnp.log(w / (1 - w))
                      + jnp.log(m / n), -jnp.inf)
    log_den = jnp.logaddexp(jax.scipy.special.logsumexp(logk, axis=0), log_c)   # (N,)
    p = jnp.exp(logk - log_den[None, :])
    p1, pt1 = jnp.sum(p, axis=1), jnp.sum(p, axis=0)
    n_p = jnp.sum(p1)
    mu_x, mu_y = pt1 @ x / n_p, p1 @ y / n_p
    xh, yh = x - mu_x, y - mu_y
    a = xh.T @ p.T @ yh                                              # X̂ᵀPᵀŶ
    yy = (yh * p1[:, None]).T @ yh
    b_new = jnp.linalg.solve(yy.T, a.T).T
    t_new = mu_x - b_new @ mu_y
    s2_new = (jnp.sum(pt1 * jnp.sum(xh ** 2, axis=1)) - jnp.trace(a @ b_new.T)) / (n_p * d)
    s2_new = jnp.maximum(s2_new, 1e-10)
    change = jnp.abs(s2_new - s2) / s2
    return b_new, t_new, s2_new, change, it + 1

  def cond(state):
    return (state[4] < max_iter) & (state[3] > tol)

  init = (jnp.eye(d, dtype=x.dtype), jnp.zeros(d, x.dtype), sigma2, jnp.array(jnp.inf, x.dtype),
          jnp.array(0))
  return jax.lax.while_loop(cond, em, init)


def affine_cpd(source, target, *, w: float = 0.0, max_iter: int = 50,
               tol: float = 1e-3) -> AffineTransform:
  """Affine map T with T(source) ≈ target (source: moving Y, target: fixed X)."""
  y = graphs.check_points(source, 'CPD source', 4)
  x = graphs.check_points(target, 'CPD target', 4)
  if x.shape[1] != y.shape[1]:
    raise ValueError(f'CPD clouds must have the same dimension, got {y.shape} and {x.shape}')
  if not 0.0 <= w < 1.0:
    raise ValueError(f'CPD outlier weight w must be in [0, 1), got {w}')
  cx, cy = x.mean(0), y.mean(0)
  scale = float(np.sqrt(np.mean(np.sum((x - cx) ** 2, axis=1))))
  if scale == 0.0:
    raise ValueError('CPD target points all coincide')
  b, t, s2, _, it = _affine_cpd(jnp.asarray((x - cx) / scale, jnp.float32),
                                jnp.asarray((y - cy) / scale, jnp.float32),
                                jnp.float32(w), jnp.float32(tol), int(max_iter))
  b = np.asarray(b, np.float64)
  t = np.asarray(t, np.float64)
  # x ≈ cx + s (B (y - cy)/s + t)  =>  x ≈ B y + (cx - B cy + s t)
  return AffineTransform(matrix=b, translation=cx - b @ cy + scale * t,
                         sigma2=float(s2) * scale ** 2, iterations=int(it))
