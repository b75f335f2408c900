"""FroFA's feature <-> image value-range maps t_{f->x} and t_{x->f} (Sec. 3 of the paper).

Bär et al., "Frozen Feature Augmentation for Few-Shot Image Classification", CVPR 2024:
a frozen feature map f (sqrt(N) x sqrt(N) x C) is min-max scaled into an image value
range, an image augmentation a_x is applied, and the result is mapped back,

    af = t_{x->f}( a_x( t_{f->x}(f) ) ),   t_{f->x}(f) = s (f - f_min) / (f_max - f_min),

with s = 1 ([0, 1]) or s = 255 ([0, 255]).  The variants differ in where f_min / f_max
come from:

* ``'default'`` (FroFA) and ``'c'`` (cFroFA): one min/max over the whole map;
* ``'c2'`` (c²FroFA): one min/max per channel;
* ``'e'`` / ``'e2'`` (element-wise FroFA, which the paper tried and found to hurt):
  the global / per-channel min/max of 'c' / 'c2'.

(cFroFA and c²FroFA also draw the augmentation's parameter per channel, the element-wise
variants one per element; that lives in `augment.py`.)  The inverse reuses the forward statistics, so t_{x->f} ∘ t_{f->x} is the
identity; a map (or channel) with f_max == f_min maps to 0 and back to f_min exactly.

`stats='example'` computes the statistics from each example (the default here);
callers may instead pass precomputed statistics (e.g. over a training set) as
`fmin`/`fmax` (scalars or per-channel arrays).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

VARIANTS = ('default', 'c', 'c2', 'e', 'e2')


class Stats(NamedTuple):
  """min and max of a feature map: scalars ('default', 'c') or shape (C,) ('c2')."""
  fmin: jax.Array
  fmax: jax.Array


def per_channel_stats(variant: str) -> bool:
  """True when `variant` scales each channel by its own min/max (c²FroFA, 'e2')."""
  if variant not in VARIANTS:
    raise ValueError(f'unknown FroFA variant {variant!r}; valid: {VARIANTS}')
  return variant in ('c2', 'e2')


def feature_stats(f: jax.Array, variant: str) -> Stats:
  """min/max of one feature map f (H, W, C), globally or per channel (variant 'c2')."""
  if f.ndim != 3:
    raise ValueError(f'a feature map must be (H, W, C), got shape {f.shape}')
  if per_channel_stats(variant):
    return Stats(jnp.min(f, axis=(0, 1)), jnp.max(f, axis=(0, 1)))
  return Stats(jnp.min(f), jnp.max(f))


def _span(stats: Stats) -> jax.Array:
  span = stats.fmax - stats.fmin
  # A constant map/channel: divide by 1 instead of 0; it maps to 0 and back to fmin.
  return jnp.where(span > 0, span, jnp.ones_like(span))


def f_to_x(f: jax.Array, stats: Stats, scale: float = 1.0) -> jax.Array:
  """t_{f->x}: features to the image range [0, scale] (scale 1 or 255)."""
  x = (f - stats.fmin) / _span(stats) * scale
  return jnp.clip(x, 0.0, scale)


def x_to_f(x: jax.Array, stats: Stats, scale: float = 1.0) -> jax.Array:
  """t_{x->f}: the inverse of `f_to_x` with the same statistics."""
  return x / scale * _span(stats) + stats.fmin


def frofa(f: jax.Array, augment_x, *, variant: str = 'c2', scale: float = 1.0,
          stats: Stats | None = None) -> jax.Array:
  """t_{x->f} ∘ augment_x ∘ t_{f->x} on one feature map f (H, W, C).

  `augment_x(x)` works on the image-range map x in [0, scale]; `stats` defaults to the
  example's own statistics for `variant`.
  """
  if stats is None:
    stats = feature_stats(f, variant)
  x = f_to_x(f, stats, scale)
  return x_to_f(augment_x(x), stats, scale).astype(f.dtype)
