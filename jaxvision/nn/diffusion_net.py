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

Operators (float64 numpy pre-processing): `gradient_operators(verts, faces)` gives the
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
import scipy.sparse as sp

from jaxvision.geometry import mesh_operators

MIN_TIME = 1e-8


# ---------------------------------------------------------------- operators (numpy)
def tangent_frames(verts, faces) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """(normals, frame x, frame y) per vertex, each (n, 3) unit; y = normal × x."""
  v, f = mesh_operators.check_mesh(verts, faces, 'DiffusionNet mesh')
  n = mesh_operators.vertex_normals(v, f)
  # first incident edge of every vertex (combinatorial: rotates with the mesh)
  corner, nxt = f.ravel(), f[:, [1, 2, 0]].ravel()
  seen, at = np.unique(corner, return_index=True)            # first corner of each vertex
  if len(seen) != len(v):
    raise ValueError(f'{len(v) - len(seen)} vertices lie on no face')
  first = nxt[at]
  e = v[first] - v
  bx = e - np.sum(e * n, axis=1, keepdims=True) * n
  norm = np.linalg.norm(bx, axis=1, keepdims=True)
  bad = norm[:, 0] < 1e-12                 # edge along the normal: any perpendicular
  if np.any(bad):
    alt = np.where(np.abs(n[bad, :1]) < 0.9, [[1.0, 0, 0]], [[0, 1.0, 0]])
    bx[bad] = np.cross(n[bad], alt)
    norm[bad] = np.linalg.norm(bx[bad], axis=1, keepdims=True)
  bx = bx / norm
  return n, bx, np.cross(n, bx)


def gradient_operators(verts, faces) -> tuple[sp.csr_matrix, sp.csr_matrix]:
  """(G_x, G_y) (n, n): (G_x u)_i, (G_y u)_i = the gradient of u at vertex i in its frame."""
  v, f = mesh_operators.check_mesh(verts, faces, 'DiffusionNet mesh')
  _, bx, by = tangent_frames(v, f)
  p = v[f]                                                    # (m, 3 corners, 3)
  cross = np.cross(p[:, 1] - p[:, 0], p[:, 2] - p[:, 0])
  area2 = np.linalg.norm(cross, axis=1)                       # 2 · area
  unit_n = cross / np.maximum(area2, 1e-300)[:, None]
  # face gradient of the hat function of corner c: (n × e_c) / (2A), e_c opposite c
  opp = np.stack([p[:, 2] - p[:, 1], p[:, 0] - p[:, 2], p[:, 1] - p[:, 0]], axis=1)
  hat = np.cross(unit_n[:, None, :], opp) / np.maximum(area2, 1e-300)[:, None, None]
  weight = np.zeros(len(v))
  np.add.at(weight, f.ravel(), np.repeat(area2, 3))
  ops = []
  for frame in (bx, by):
    rows, cols, vals = [], [], []
    for a in range(3):                                        # vertex f[:, a] receives
      for c in range(3):                                      # face gradient of corner c
        rows.append(f[:, a])
        cols.append(f[:, c])
        vals.append(area2 * np.sum(hat[:, c] * frame[f[:, a]], axis=1))
    g = sp.coo_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
                      shape=(len(v), len(v))).tocsr()
    ops.append(sp.diags(1.0 / np.maximum(weight, 1e-300)) @ g)
  return ops[0].tocsr(), ops[1].tocsr()


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
  grads = gradient_operators(verts, faces)
  if sparse:
    gx, gy = (jsparse.BCOO.from_scipy_sparse(g.astype(np.dtype(dtype))) for g in grads)
  else:
    gx, gy = (jnp.asarray(g.toarray(), dtype) for g in grads)
  return dict(evals=jnp.asarray(basis.evals, dtype), evecs=jnp.asarray(basis.evecs, dtype),
              mass=jnp.asarray(basis.mass, dtype), grad_x=gx, grad_y=gy)
