"""DiffusionNet in Flax (Sharp, Attaiki, Crane, Ovsjanikov, ToG 2022), the feature
extractor of ULRSSM / Hybrid ULRSSM (Bastian et al., CVPR 2024, Sec. 5; upstream
`networks/diffusion_network.py`: 4 blocks × 128, facts, not code).

* Learned-time spectral diffusion (DiffusionNet Sec. 3.2, Eq. 4): with a mass-orthonormal
  LBO basis Φ (n, k), eigenvalues λ and lumped mass M,
      h_t(u) = Φ · (exp(−λ t) ⊙ Φᵀ M u),
  one learned time t per channel (initialised 0, used clamped at ≥ 1e-8 with the
  gradient of the clamped value, as upstream; the stored value is not clamped).
* Spatial gradient features (Sec. 3.3): per-vertex tangent gradients of each channel,
  as complex numbers g = g_x + i g_y in a per-vertex tangent frame; a learned complex-
  linear map A = A_re + i A_im (no bias) mixes channels, and the feature is
  tanh(Re(conj(g) ⊙ A g)) — invariant to the choice of each vertex's frame (a rotation
  e^{iθ} of the frame multiplies both g and A g by the same unit complex number).
* Block (Sec. 3.4): x_d = diffuse(x); features [x, x_d, gradfeat(x_d)] → MLP (widths
  C, C, ReLU, dropout 0.5 before all but the first linear) → + x (residual).
* Net: Linear(C_in → C) → blocks → Linear(C → C_out), per vertex.

Operators (float64 numpy pre-processing, `jaxvision.geometry.tangent_gradients`): `gradient_operators(verts, faces)` gives the
per-vertex gradient (the area-weighted mean of the adjacent piecewise-linear face
gradients, exact for linear functions) in a frame (vertex normal, first incident edge
projected, normal × it), as scipy sparse (n, n) matrices for x and y.  Upstream uses a
least-squares fit over the one-ring; both are exact for linear functions.  Pass them,
with Φ, λ, M, to the model as dense arrays or `jax.experimental.sparse.BCOO`.
"""

from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxvision.geometry import tangent_gradients

MIN_TIME = 1e-8


# ---------------------------------------------------------------- layers (JAX)
def spectral_diffusion(x, evals, evecs, mass, times):
  """Φ (exp(−λ t) ⊙ Φᵀ M x): x (n, C), evals (k,), evecs (n, k), mass (n,), times (C,)."""
  spec = evecs.T @ (mass[:, None] * x)                        # (k, C)
  # clamp at MIN_TIME with a straight-through gradient (upstream clamps the stored
  # parameter in place and differentiates at the clamped value)
  times = times + jax.lax.stop_gradient(jnp.maximum(times, MIN_TIME) - times)
  coefs = jnp.exp(-evals[:, None] * times[None, :])
  return evecs @ (coefs * spec)


def gradient_feature(gx, gy, a_re, a_im):
  """tanh(Re(conj(g) · A g)) per vertex and channel; g = gx + i gy (n, C), A (C, C)."""
  bx = gx @ a_re - gy @ a_im
  by = gy @ a_re + gx @ a_im
  return jnp.tanh(gx * bx + gy * by)


class LearnedTimeDiffusion(nn.Module):
  """One learned diffusion time per channel (initialised 0)."""

  @nn.compact
  def __call__(self, x, evals, evecs, mass):
    times = self.param('times', nn.initializers.zeros, (x.shape[-1],), jnp.float32)
    return spectral_diffusion(x, evals, evecs, mass, times.astype(x.dtype))


class SpatialGradientFeatures(nn.Module):
  """Frame-invariant features from per-vertex tangent gradients (n, C) × 2."""

  @nn.compact
  def __call__(self, gx, gy):
    c = gx.shape[-1]
    init = nn.initializers.variance_scaling(1.0 / 3.0, 'fan_in', 'uniform')  # torch Linear
    a_re = self.param('a_re', init, (c, c), jnp.float32).astype(gx.dtype)
    a_im = self.param('a_im', init, (c, c), jnp.float32).astype(gx.dtype)
    return gradient_feature(gx, gy, a_re, a_im)


class MiniMLP(nn.Module):
  widths: Sequence[int]
  dropout: float = 0.5

  @nn.compact
  def __call__(self, x, *, train: bool = False):
    for i, w in enumerate(self.widths):
      if self.dropout and i > 0:
        x = nn.Dropout(self.dropout, deterministic=not train)(x)
      x = nn.Dense(w, name=f'dense_{i}')(x)
      if i < len(self.widths) - 1:
        x = jax.nn.relu(x)
    return x


class DiffusionNetBlock(nn.Module):
  width: int
  mlp_layers: int = 2
  dropout: float = 0.5
  gradient_features: bool = True

  @nn.compact
  def __call__(self, x, ops, *, train: bool = False):
    xd = LearnedTimeDiffusion(name='diffusion')(x, ops['evals'], ops['evecs'], ops['mass'])
    feats = [x, xd]
    if self.gradient_features:
      feats.append(SpatialGradientFeatures(name='gradient_features')(
          ops['grad_x'] @ xd, ops['grad_y'] @ xd))
    y = MiniMLP((self.width,) * self.mlp_layers, self.dropout, name='mlp')(
        jnp.concatenate(feats, axis=-1), train=train)
    return y + x


class DiffusionNet(nn.Module):
  """Per-vertex features (n, C_in) -> (n, C_out); `ops` = dict(evals (k,), evecs (n, k),
  mass (n,), grad_x, grad_y (n, n)).  Upstream ULRSSM: width 128, 4 blocks, out 256."""
  out_channels: int = 256
  width: int = 128
  num_blocks: int = 4
  mlp_layers: int = 2
  dropout: float = 0.5
  gradient_features: bool = True

  @nn.compact
  def __call__(self, x, ops, *, train: bool = False):
    missing = {'evals', 'evecs', 'mass'} - set(ops)
    if self.gradient_features:
      missing |= {'grad_x', 'grad_y'} - set(ops)
    if missing:
      raise ValueError(f'DiffusionNet ops lack {sorted(missing)}')
    if ops['evecs'].shape[0] != x.shape[0]:
      raise ValueError(f'features for {x.shape[0]} vertices, basis for '
                       f'{ops["evecs"].shape[0]}')
    x = nn.Dense(self.width, name='first')(x)
    for b in range(self.num_blocks):
      x = DiffusionNetBlock(self.width, self.mlp_layers, self.dropout, self.gradient_features,
                            name=f'block_{b}')(x, ops, train=train)
    return nn.Dense(self.out_channels, name='last')(x)


def mesh_ops(verts, faces, k: int = 128, dtype=jnp.float32, *, sparse: bool = False) -> dict:
  """The operator dict of a mesh: LBO basis + gradient operators (dense, or BCOO)."""
  from jax.experimental import sparse as jsparse  # pylint: disable=g-import-not-at-top
  from jaxvision.geometry import spectral  # pylint: disable=g-import-not-at-top
  basis = spectral.lbo_basis(verts, faces, k)
  grads = tangent_gradients.gradient_operators(verts, faces)
  if sparse:
    gx, gy = (jsparse.BCOO.from_scipy_sparse(g.astype(np.dtype(dtype))) for g in grads)
  else:
    gx, gy = (jnp.asarray(g.toarray(), dtype) for g in grads)
  return dict(evals=jnp.asarray(basis.evals, dtype), evecs=jnp.asarray(basis.evecs, dtype),
              mass=jnp.asarray(basis.mass, dtype), grad_x=gx, grad_y=gy)
