"""Spectral point descriptors: heat kernel (HKS) and wave kernel (WKS) signatures.

Sun et al. 2009 (HKS), Aubry et al. 2011 (WKS); the auto-scaled variants that
DiffusionNet / ULRSSM / Hybrid Functional Maps (Bastian et al., CVPR 2024, Sec. 5) feed
their networks, upstream `utils/geometry_util.py::compute_hks_autoscale / wks /
auto_wks / compute_wks_autoscale` (facts, not code):

- HKS: `h_t(x) = Σ_k exp(−λ_k t) φ_k(x)²`, t on `logspace(−2, 0, count)`;
- WKS: `w_e(x) = Σ_k c_{e,k} φ_k(x)²`, `c_{e,k} = exp(−(e − log|λ_k|)²/(2σ²))` over the
  eigenvalues > 1e-5 (the constant mode is skipped), optionally divided by `Σ_k c_{e,k}`;
  auto-scale: `σ = 7(log λ_max − log λ_1)/n`, energies on a linspace between
  `log λ_1 + 2σ` and `log λ_max − 2σ` (λ_1 the first non-zero eigenvalue);
- `wks_autoscale`: the first n_eig eigenpairs, 128 descriptors, each channel divided by
  its M-norm `sqrt(Σ_x M_x w(x)²)`.

JAX, jittable; eigenvalues sorted ascending.
"""

from __future__ import annotations

import jax.numpy as jnp


def hks(evals, evecs, times):
  """(n, len(times)) heat kernel signature."""
  coefs = jnp.exp(-jnp.asarray(times)[:, None] * evals[None, :])          # (t, k)
  return (evecs ** 2) @ coefs.T


def hks_autoscale(evals, evecs, count: int = 16):
  return hks(evals, evecs, jnp.logspace(-2.0, 0.0, count, dtype=evals.dtype))


def wks(evals, evecs, energies, sigma, scaled: bool = False, min_eval: float = 1e-5):
  """(n, len(energies)) wave kernel signature; eigenvalues <= min_eval are ignored."""
  keep = (evals > min_eval).astype(evecs.dtype)
  log_ev = jnp.log(jnp.where(evals > min_eval, jnp.abs(evals), 1.0))
  coefs = jnp.exp(-(energies[:, None] - log_ev[None, :]) ** 2 / (2 * sigma ** 2))
  coefs = coefs * keep[None, :]                                             # (e, k)
  out = (evecs ** 2) @ coefs.T
  if scaled:
    out = out / jnp.sum(coefs, axis=1)[None, :]
  return out


def auto_wks(evals, evecs, n_descr: int = 128, scaled: bool = True):
  abs_ev = jnp.abs(evals)
  e_min, e_max = jnp.log(abs_ev[1]), jnp.log(abs_ev[-1])
  sigma = 7.0 * (e_max - e_min) / n_descr
  energies = jnp.linspace(e_min + 2 * sigma, e_max - 2 * sigma, n_descr)
  return wks(abs_ev, evecs, energies, sigma, scaled=scaled)


def wks_autoscale(evals, evecs, mass, n_descr: int = 128, n_eig: int = 128):
  """Auto-scaled WKS, each channel normalised to unit M-norm (network input)."""
  feat = auto_wks(evals[:n_eig], evecs[:, :n_eig], n_descr, scaled=True)
  norm = jnp.sqrt(jnp.sum(mass[:, None] * feat ** 2, axis=0))
  return feat / norm[None, :]
