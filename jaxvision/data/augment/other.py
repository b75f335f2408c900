"""JPEG-style quantisation and mixup in JAX (FroFA's "other" group, Sec. 4, Table 2).

jpeg(x, quality): each channel is a grey image; it is level-shifted to [-128, 127],
cut into 8x8 blocks (edges replicated up to a multiple of 8, as libjpeg pads), each
block's orthonormal 2-D DCT-II is divided by the IJG quality-scaled luminance table
(ITU-T T.81 Annex K, Table K.1; scale 5000/q below quality 50, else 200 - 2q),
rounded, multiplied back and inverted.  No entropy coding or chroma subsampling: the
loss of JPEG is all in this quantisation.

mixup(key, x, y, alpha): big_vision's `get_mixup`: one p ~ Beta(alpha, alpha) per batch
(or per example), p = max(p, 1 - p), and every example is mixed with its neighbour
(the batch rolled by one), features and (one-hot) labels alike (Zhang et al. 2018).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

from jaxvision.data.augment import pointwise as ops_pointwise

LUMINANCE_TABLE = np.array([
    [16, 11, 10, 16, 24, 40, 51, 61],
    [12, 12, 14, 19, 26, 58, 60, 55],
    [14, 13, 16, 24, 40, 57, 69, 56],
    [14, 17, 22, 29, 51, 87, 80, 62],
    [18, 22, 37, 56, 68, 109, 103, 77],
    [24, 35, 55, 64, 81, 104, 113, 92],
    [49, 64, 78, 87, 103, 121, 120, 101],
    [72, 92, 95, 98, 112, 100, 103, 99]], np.float32)


def dct_matrix(n: int = 8) -> np.ndarray:
  """Orthonormal DCT-II: D[k, i] = c_k cos((2 i + 1) k pi / 2n)."""
  k = np.arange(n)[:, None]
  i = np.arange(n)[None, :]
  d = np.cos((2 * i + 1) * k * math.pi / (2 * n)) * math.sqrt(2.0 / n)
  d[0] /= math.sqrt(2.0)
  return d.astype(np.float32)


def quality_table(quality):
  """The IJG-scaled luminance quantisation table for `quality` in [1, 100] (traceable)."""
  q = jnp.clip(jnp.round(jnp.asarray(quality, jnp.float32)), 1, 100)
  s = jnp.where(q < 50, jnp.floor(5000.0 / q), 200.0 - 2.0 * q)
  return jnp.clip(jnp.floor((LUMINANCE_TABLE * s + 50.0) / 100.0), 1.0, 255.0)


def _round_half_away(v):
  return jnp.sign(v) * jnp.floor(jnp.abs(v) + 0.5)


def jpeg(x, quality, *, scale=1.0, quantize=False):
  """JPEG-style 8x8 DCT quantisation of every channel of x (H, W, C) in [0, scale]."""
  if x.ndim != 3:
    raise ValueError(f'expected an (H, W, C) map, got shape {x.shape}')
  h, w, c = x.shape
  levels = (ops_pointwise.from_levels(ops_pointwise.to_levels(x, scale), 255.0)
            if quantize else x * (255.0 / scale))
  ph, pw = -h % 8, -w % 8
  v = jnp.pad(levels, ((0, ph), (0, pw), (0, 0)), mode='edge') - 128.0
  hb, wb = (h + ph) // 8, (w + pw) // 8
  blocks = v.reshape(hb, 8, wb, 8, c)
  d = jnp.asarray(dct_matrix())
  coef = jnp.einsum('ki,aibjc,lj->akblc', d, blocks, d)
  table = quality_table(quality)[None, :, None, :, None]
  coef = _round_half_away(coef / table) * table
  rec = jnp.einsum('ki,akblc,lj->aibjc', d, coef, d).reshape(h + ph, w + pw, c)[:h, :w]
  rec = jnp.clip(rec + 128.0, 0.0, 255.0)
  if quantize:
    rec = _round_half_away(rec)
  return (rec * (scale / 255.0)).astype(x.dtype)


def mixup(key, x, y, alpha: float, *, per_example: bool = False):
  """Mixes each example of the batch x (B, ...) and soft labels y (B, K) with the next.

  Returns (mixed x, mixed y). p ~ Beta(alpha, alpha) folded to [0.5, 1].
  """
  if alpha <= 0:
    raise ValueError(f'mixup needs alpha > 0, got {alpha}')
  b = x.shape[0]
  p = jax.random.beta(key, alpha, alpha, shape=(b,) if per_example else ())
  p = jnp.maximum(p, 1.0 - p)
  px = p.reshape((-1,) + (1,) * (x.ndim - 1)) if per_example else p
  py = p.reshape(-1, 1) if per_example else p
  mixed_x = px * x + (1.0 - px) * jnp.roll(x, 1, axis=0)
  mixed_y = py * y + (1.0 - py) * jnp.roll(y, 1, axis=0)
  return mixed_x.astype(x.dtype), mixed_y
