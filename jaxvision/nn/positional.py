"""Positional encodings: sinusoid tables (two layouts) and rotary embeddings (RoPE).

- `sinusoid_interleaved`: Vaswani et al.'s table with sin on even and cos on odd
  channels, `div_term = exp(-ln(10000) * 2i / d)` (MDM's `PositionalEncoding`, which
  FlowMDM uses for diffusion timesteps).
- `sinusoid_concat`: `[sin(pos * f) | cos(pos * f)]` with `f = theta^(-i / (d/2))`
  (x-transformers' `ScaledSinusoidalEmbedding`, FlowMDM's absolute BPE stage).
- `rope_frequencies` / `apply_rope`: Su et al.'s rotary embedding as x-transformers
  writes it: `inv_freq = 1 / theta^(arange(0, r, 2) / r)`, angles `cat(f, f)`, and
  `rotate_half` pairs channel i with channel i + r/2 (not adjacent channels).  Only
  the first r channels of a head are rotated.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np


def sinusoid_interleaved(num_positions: int, dim: int) -> np.ndarray:
  if dim % 2:
    raise ValueError(f'sinusoid dimension must be even, got {dim}')
  position = np.arange(num_positions, dtype=np.float32)[:, None]
  div_term = np.exp(np.arange(0, dim, 2, dtype=np.float32) * (-np.log(10000.0) / dim))
  table = np.zeros((num_positions, dim), np.float32)
  table[:, 0::2] = np.sin(position * div_term)
  table[:, 1::2] = np.cos(position * div_term)
  return table


def concat_inv_freq(dim: int, theta: float = 10000.0):
  if dim % 2:
    raise ValueError(f'sinusoid dimension must be even, got {dim}')
  half = dim // 2
  return theta ** -(jnp.arange(half, dtype=jnp.float32) / half)


def sinusoid_concat(positions, dim: int, theta: float = 10000.0):
  """(..., dim) = [sin(p f) | cos(p f)] for positions (...) (any float or int array)."""
  angles = jnp.asarray(positions, jnp.float32)[..., None] * concat_inv_freq(dim, theta)
  return jnp.concatenate([jnp.sin(angles), jnp.cos(angles)], axis=-1)


def rope_frequencies(positions, rotary_dim: int, theta: float = 10000.0):
  """(..., rotary_dim) rotation angles cat(p f, p f) for positions (...)."""
  if rotary_dim % 2:
    raise ValueError(f'rotary dimension must be even, got {rotary_dim}')
  inv_freq = 1.0 / theta ** (jnp.arange(0, rotary_dim, 2, dtype=jnp.float32) / rotary_dim)
  freqs = jnp.asarray(positions, jnp.float32)[..., None] * inv_freq
  return jnp.concatenate([freqs, freqs], axis=-1)


def rotate_half(x):
  x1, x2 = jnp.split(x, 2, axis=-1)
  return jnp.concatenate([-x2, x1], axis=-1)


def apply_rope(x, freqs):
  """Rotates the first freqs.shape[-1] channels of x (..., d) by angles `freqs`.

  `freqs` broadcasts against x's leading dims; e.g. x (B, T, H, D) with freqs
  (B, T, 1, R).  Angles of zero leave x unchanged.
  """
  r = freqs.shape[-1]
  if r > x.shape[-1]:
    raise ValueError(f'rotary dimension {r} exceeds the head dimension {x.shape[-1]}')
  xl, xr = x[..., :r], x[..., r:]
  cos, sin = jnp.cos(freqs).astype(x.dtype), jnp.sin(freqs).astype(x.dtype)
  xl = xl * cos + rotate_half(xl) * sin
  return jnp.concatenate([xl, xr], axis=-1)
