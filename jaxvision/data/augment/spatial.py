"""RandAugment's geometric and crop & drop image ops on a grid x (H, W, C), in JAX.

Rotate, shear x/y, translate x/y, crop, resized crop, inception crop, patch dropout
(FroFA's "geometric" and "crop & drop" groups, Bär et al. CVPR 2024, Sec. 4, Table 2,
applied there to feature grids), plus cutout.
The geometric ops follow google-research/big_vision `big_vision/pp/autoaugment.py`,
i.e. tensorflow-addons' projective `transform` with nearest-neighbour sampling: output
pixel (row y, column x) reads input (y', x') = (b0 x + b1 y + b2, a0 x + a1 y + a2),
rounded half away from zero; positions outside the grid get `fill` (big_vision's
`replace` = 128 of 255, i.e. mid-range: `fill=0.5 * scale` is the callers' default).

  rotate(degrees)        about the grid centre (tfa `angles_to_projective_transforms`)
  shear_x(level)         x' = x + level * y          shear_y(level): y' = level * x + y
  translate_x(pixels)    x' = x + pixels             translate_y(pixels): y' = y + pixels
  cutout(cy, cx, half)   rows cy-half .. cy+half-1 (and columns likewise) set to fill
  crop_resize(box)       the box (y0, x0, h, w), bilinear-resized back to (H, W)
  patch_dropout(key, k)  keeps k random tokens: returns (k, C) tokens, not a grid

All parameters may be traced values (jit/vmap over examples); shapes never depend on
them, except patch dropout's static `keep`.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp


def _round_half_away(v):
  """std::round, as TF's nearest-neighbour sampling uses (jnp.round is half-to-even)."""
  return jnp.sign(v) * jnp.floor(jnp.abs(v) + 0.5)


def affine_nearest(x, a, b, fill):
  """Samples x (H, W, C) at (b . [col, row, 1], a . [col, row, 1]) for every output pixel."""
  if x.ndim != 3:
    raise ValueError(f'expected an (H, W, C) grid, got shape {x.shape}')
  h, w, _ = x.shape
  rows, cols = jnp.meshgrid(jnp.arange(h, dtype=jnp.float32),
                            jnp.arange(w, dtype=jnp.float32), indexing='ij')
  src_x = _round_half_away(a[0] * cols + a[1] * rows + a[2]).astype(jnp.int32)
  src_y = _round_half_away(b[0] * cols + b[1] * rows + b[2]).astype(jnp.int32)
  inside = (src_x >= 0) & (src_x < w) & (src_y >= 0) & (src_y < h)
  values = x[jnp.clip(src_y, 0, h - 1), jnp.clip(src_x, 0, w - 1)]
  return jnp.where(inside[..., None], values, jnp.asarray(fill, x.dtype))


def rotate(x, degrees, *, fill=0.5):
  h, w, _ = x.shape
  rad = jnp.asarray(degrees, jnp.float32) * (math.pi / 180.0)
  cos, sin = jnp.cos(rad), jnp.sin(rad)
  x_off = ((w - 1) - (cos * (w - 1) - sin * (h - 1))) / 2.0
  y_off = ((h - 1) - (sin * (w - 1) + cos * (h - 1))) / 2.0
  return affine_nearest(x, (cos, -sin, x_off), (sin, cos, y_off), fill)


def shear_x(x, level, *, fill=0.5):
  return affine_nearest(x, (1.0, level, 0.0), (0.0, 1.0, 0.0), fill)


def shear_y(x, level, *, fill=0.5):
  return affine_nearest(x, (1.0, 0.0, 0.0), (level, 1.0, 0.0), fill)


def translate_x(x, pixels, *, fill=0.5):
  return affine_nearest(x, (1.0, 0.0, pixels), (0.0, 1.0, 0.0), fill)


def translate_y(x, pixels, *, fill=0.5):
  return affine_nearest(x, (1.0, 0.0, 0.0), (0.0, 1.0, pixels), fill)


def cutout(x, cy, cx, half, *, fill=0.5):
  """Sets the (2 half)^2 square centred at (cy, cx), clipped to the grid, to `fill`."""
  h, w, _ = x.shape
  rows = jnp.arange(h)[:, None]
  cols = jnp.arange(w)[None, :]
  inside = ((rows >= cy - half) & (rows < cy + half) & (cols >= cx - half) & (cols < cx + half))
  return jnp.where(inside[..., None], jnp.asarray(fill, x.dtype), x)


def crop_resize(x, y0, x0, ch, cw):
  """The box rows [y0, y0+ch) x cols [x0, x0+cw) (continuous), bilinearly resized to (H, W).

  Half-pixel centres; samples outside the grid are dropped and the remaining weights
  renormalised (as PIL's and jax.image's resamplers do).
  """
  h, w, _ = x.shape
  sy = h / jnp.asarray(ch, jnp.float32)
  sx = w / jnp.asarray(cw, jnp.float32)
  scale = jnp.stack([sy, sx])
  translation = jnp.stack([-jnp.asarray(y0, jnp.float32) * sy,
                           -jnp.asarray(x0, jnp.float32) * sx])
  return jax.image.scale_and_translate(x, x.shape, (0, 1), scale, translation,
                                       method='linear', antialias=False)


def patch_dropout(x, key, keep: int):
  """Keeps `keep` tokens of the grid, chosen uniformly without replacement, in grid order.

  Returns tokens (keep, C): the MAP head pools any number of tokens (Sec. 4, "patch
  dropout"); this op therefore ends a pipeline.
  """
  h, w, c = x.shape
  n = h * w
  if not 1 <= keep <= n:
    raise ValueError(f'patch dropout keeps {keep} of {n} tokens; need 1 <= keep <= {n}')
  idx = jnp.sort(jax.random.permutation(key, n)[:keep])
  return x.reshape(n, c)[idx]
