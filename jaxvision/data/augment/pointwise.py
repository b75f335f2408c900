"""RandAugment's stylistic image ops on a float image x (H, W, C) in [0, scale], in JAX.

Brightness, contrast, equalize, invert, posterize, sharpness, solarize (the
"stylistic" group of FroFA, Bär et al. CVPR 2024, Sec. 4, Table 2, which applies them
to feature maps mapped into an image range) plus autocontrast, each defined as in
google-research/big_vision `big_vision/pp/autoaugment.py` (the TPU AutoAugment ops,
PIL's ImageEnhance/ImageOps semantics on uint8 images) but written for floats in
[0, scale] (scale 1 or 255) and for any number of channels:

* every op treats each channel as its own grey image (histograms, means, smoothing are
  per channel), so a (C,) parameter gives cFroFA's per-channel draw for free;
* `quantize=False` (the default, for features) keeps values continuous; ops that are
  defined on 256 levels (posterize, equalize) quantise to those levels in any case;
* `quantize=True` reproduces the uint8 pipeline exactly on inputs on the 256-level grid
  (k * scale / 255): every float->uint8 cast of big_vision truncates.

Parameters (scalars, shape (C,) arrays for per-channel draws, or (H, W, C) per element):
  brightness(f), contrast(f), sharpness(f): blend factors; 1 = identity.
  posterize(bits): 0..8 bits kept; 8 = identity.
  solarize(threshold): in uint8 units 0..256; pixels >= threshold are inverted.

Quirk: big_vision's contrast blends towards sum(histogram) / 256 = H*W/256 (the number
of pixels, not their mean; inherited from the TPU AutoAugment code).  `contrast` blends
towards the true per-channel mean (PIL's definition) unless `mean='big_vision'`.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

_LEVELS = 255.0
_EPS = 1e-4  # guards floor() against float error on exact 256-level grid values


def _check(x):
  if x.ndim != 3:
    raise ValueError(f'expected an (H, W, C) map, got shape {x.shape}')


def _per_channel(p, x):
  """A scalar, (C,) or per-element (H, W, C) parameter, broadcastable against x."""
  p = jnp.asarray(p)
  if p.ndim == 0 or p.shape == x.shape:
    return p
  if p.shape != (x.shape[-1],):
    raise ValueError(f'parameter of shape {p.shape} for a map of shape {x.shape}: give a '
                     f'scalar, one per channel ({x.shape[-1]},) or one per element')
  return p[None, None, :]


def to_levels(x, scale):
  """x in [0, scale] -> integer levels 0..255 (a float->uint8 cast: truncation)."""
  return jnp.clip(jnp.floor(x * (_LEVELS / scale) + _EPS), 0, 255).astype(jnp.int32)


def from_levels(q, scale, dtype=jnp.float32):
  return q.astype(dtype) * (scale / _LEVELS)


def _cast(x, scale, quantize):
  """big_vision's tf.cast(..., uint8) after clipping, if `quantize`."""
  x = jnp.clip(x, 0.0, scale)
  return from_levels(to_levels(x, scale), scale, x.dtype) if quantize else x


def blend(image1, image2, factor, *, scale=1.0, quantize=False):
  """image1 + factor * (image2 - image1), clipped to [0, scale] (big_vision `blend`)."""
  out = image1 + factor * (image2 - image1)
  out = _cast(out, scale, quantize)
  out = jnp.where(factor == 0, image1, out)
  return jnp.where(factor == 1, image2, out)


def brightness(x, factor, *, scale=1.0, quantize=False):
  """Blend with black: clip(factor * x) (PIL ImageEnhance.Brightness)."""
  _check(x)
  return blend(jnp.zeros_like(x), x, _per_channel(factor, x), scale=scale, quantize=quantize)


def contrast(x, factor, *, scale=1.0, quantize=False, mean='true'):
  """Blend with the channel's mean grey level (PIL ImageEnhance.Contrast).

  mean='true': the per-channel mean; mean='big_vision': H*W/256 levels (see module doc).
  """
  _check(x)
  h, w, _ = x.shape
  if mean == 'true':
    m = jnp.mean(x, axis=(0, 1), keepdims=True)
  elif mean == 'big_vision':
    m = jnp.full((1, 1, x.shape[-1]), h * w / 256.0 * scale / _LEVELS, x.dtype)
  else:
    raise ValueError(f"contrast mean must be 'true' or 'big_vision', got {mean!r}")
  degenerate = jnp.broadcast_to(_cast(m, scale, quantize), x.shape)
  return blend(degenerate, x, _per_channel(factor, x), scale=scale, quantize=quantize)


def sharpness(x, factor, *, scale=1.0, quantize=False):
  """Blend with a 3x3 smoothed copy ([[1,1,1],[1,5,1],[1,1,1]] / 13, borders unsmoothed)."""
  _check(x)
  h, w, _ = x.shape
  degenerate = x
  if h >= 3 and w >= 3:
    total = 4.0 * x[1:-1, 1:-1]
    for dy in range(3):
      for dx in range(3):
        total = total + x[dy:dy + h - 2, dx:dx + w - 2]
    inner = _cast(total / 13.0, scale, quantize)
    degenerate = x.at[1:-1, 1:-1].set(inner)
  return blend(degenerate, x, _per_channel(factor, x), scale=scale, quantize=quantize)


def posterize(x, bits, *, scale=1.0, quantize=False):
  """Keeps the `bits` most significant bits of each 8-bit level (PIL ImageOps.posterize)."""
  del quantize  # defined on 256 levels
  _check(x)
  shift = 8 - jnp.clip(jnp.asarray(bits).astype(jnp.int32), 0, 8)
  shift = _per_channel(shift, x)
  q = to_levels(x, scale)
  return from_levels(jnp.left_shift(jnp.right_shift(q, shift), shift), scale, x.dtype)


def solarize(x, threshold, *, scale=1.0, quantize=False):
  """Inverts every value at or above `threshold` (uint8 units) (PIL ImageOps.solarize)."""
  del quantize
  _check(x)
  t = _per_channel(threshold, x)
  # Compared in level units; _EPS makes an exact level k count as k (not k - 1 ulp).
  return jnp.where(x * (_LEVELS / scale) + _EPS < t, x, scale - x)


def invert(x, *, scale=1.0, quantize=False):
  del quantize
  _check(x)
  return scale - x


def autocontrast(x, *, scale=1.0, quantize=False):
  """Stretches each channel to [0, scale] (PIL ImageOps.autocontrast without cutoff)."""
  _check(x)
  lo = jnp.min(x, axis=(0, 1), keepdims=True)
  hi = jnp.max(x, axis=(0, 1), keepdims=True)
  span = jnp.where(hi > lo, hi - lo, 1.0)
  out = _cast((x - lo) * (scale / span), scale, quantize)
  return jnp.where(hi > lo, out, x)


def _equalize_levels(q):
  """PIL-style histogram equalisation of one channel's levels q (n,) int in 0..255."""
  hist = jnp.bincount(q, length=256)
  last = hist[jnp.max(q)]                     # count of the last non-empty bin
  step = (q.shape[0] - last) // 255
  safe = jnp.maximum(step, 1)
  lut = (jnp.cumsum(hist) + step // 2) // safe
  lut = jnp.clip(jnp.concatenate([jnp.zeros((1,), lut.dtype), lut[:-1]]), 0, 255)
  return jnp.where(step == 0, q, lut[q])


def equalize(x, *, scale=1.0, quantize=False):
  """Per-channel histogram equalisation on 256 levels (PIL ImageOps.equalize)."""
  del quantize
  _check(x)
  h, w, c = x.shape
  q = to_levels(x, scale).reshape(h * w, c)
  out = jax.vmap(_equalize_levels, in_axes=1, out_axes=1)(q)
  return from_levels(out.reshape(h, w, c), scale, x.dtype)
