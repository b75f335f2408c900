"""FocusMAE's region-biased token masking, and the random / tube / frame baselines.

Basu et al., CVPR 2024, Sec. 3.2 ("Focused masking"), Fig. 1: candidate object regions
(boxes from a detector) give a per-token prior, and the masking probability of tokens
inside the (inflated) regions is raised, so that more informative tokens are masked and
few background ones. Upstream (`dataset/masking_generator.py::OursMaskingGeneratorv1`,
`models/vit.py::get_mask`): boxes of the clip's first frame are inflated by pi about their
centre, a token is "in ROI" when its reference point lies in a box (no box: the central
box [W/4, H/4, 3W/4, 3H/4]), the 2-D map is tiled over the T' time slices, the token
logits get a bonus delta on ROI tokens, and the tokens are sampled without replacement
from softmax(logits).

Two readings of the bias, a `direction` argument:
* 'mask' (default, the paper's wording): the MASKED tokens are drawn from
  softmax(logits + delta * prior), so ROI tokens are masked more often;
* 'visible' (the released code): the VISIBLE tokens are drawn from that softmax, so
  ROI tokens are kept visible more often (masked less).

Sampling without replacement is Gumbel-top-k (Kool et al. 2019), equal in distribution
to the sequential multinomial draws of `torch.multinomial(replacement=False)`; every
mask has exactly the requested number of masked tokens. Masks are (N,) bool, True =
masked, tokens in (t, h, w) row-major order (`model.VideoMAE`). All functions are pure:
one key gives one mask; `jax.vmap` over keys (and priors) makes a batch.

Boxes are (x1, y1, x2, y2) in pixels of the model's input frame (x = column, y = row,
torchvision's convention); the reference point of token (r, c) is its centre
((c + 1/2) p, (r + 1/2) p) by default, or upstream v1's corner-minus-half-a-patch
(max(c p - p/2, 0), max(r p - p/2, 0)) with `reference='upstream'`.
"""

from __future__ import annotations

from typing import Sequence

import jax
import jax.numpy as jnp

MASK_TYPES = ('random', 'tube', 'frame', 'focus')


def num_visible(mask_type: str, grid: Sequence[int], mask_ratio: float) -> int:
  """Visible tokens per clip of each masking (what the model's encoder receives).

  random / focus: int(N (1 - ratio)) (AdaMAE's sampler); tube: T' (H'W' - int(ratio H'W'))
  (VideoMAE's TubeMaskingGenerator); frame: H'W' (T' - int(ratio T')).
  """
  t, h, w = grid
  if mask_type in ('random', 'focus'):
    n = int(t * h * w * (1 - mask_ratio))
  elif mask_type == 'tube':
    n = t * (h * w - int(mask_ratio * h * w))
  elif mask_type == 'frame':
    n = h * w * (t - int(mask_ratio * t))
  else:
    raise ValueError(f'unknown mask type {mask_type!r}; known: {MASK_TYPES}')
  if not 0 < n < t * h * w:
    raise ValueError(f'mask_ratio {mask_ratio} leaves {n} of {t * h * w} tokens visible '
                     f'with {mask_type!r} masking; need at least one visible and one masked')
  return n


def _top_k_set(key: jax.Array, logits: jax.Array, k: int) -> jax.Array:
  """(N,) bool with exactly k True, drawn without replacement from softmax(logits)."""
  gumbel = jax.random.gumbel(key, logits.shape, jnp.float32)
  _, idx = jax.lax.top_k(logits.astype(jnp.float32) + gumbel, k)
  return jnp.zeros(logits.shape, bool).at[idx].set(True)


def random_mask(key: jax.Array, num_tokens: int, num_masked: int) -> jax.Array:
  """Uniform random token masking (MAE): exactly `num_masked` of `num_tokens` masked."""
  return _top_k_set(key, jnp.zeros((num_tokens,)), num_masked)


def tube_mask(key: jax.Array, grid: Sequence[int], mask_ratio: float) -> jax.Array:
  """VideoMAE's tube masking: one random spatial mask, the same in every time slice."""
  t, h, w = grid
  spatial = random_mask(key, h * w, int(mask_ratio * h * w))
  return jnp.tile(spatial, t)


def frame_mask(key: jax.Array, grid: Sequence[int], mask_ratio: float) -> jax.Array:
  """Whole time slices masked: int(ratio T') random slices of T' (every token in them)."""
  t, h, w = grid
  slices = random_mask(key, t, int(mask_ratio * t))
  return jnp.repeat(slices, h * w)


def inflate_boxes(boxes: jax.Array, inflate: float) -> jax.Array:
  """(K, 4) boxes scaled by `inflate` (pi) about their centres (upstream's inflateroi)."""
  boxes = jnp.asarray(boxes, jnp.float32)
  x1, y1, x2, y2 = boxes[..., 0], boxes[..., 1], boxes[..., 2], boxes[..., 3]
  dx, dy = (x2 - x1) * (inflate - 1) / 2, (y2 - y1) * (inflate - 1) / 2
  return jnp.stack([x1 - dx, y1 - dy, x2 + dx, y2 + dy], axis=-1)


def region_prior(boxes: jax.Array, valid: jax.Array, grid_hw: Sequence[int], patch: int,
                 *, inflate: float = 1.2, reference: str = 'center') -> jax.Array:
  """(H'W',) bool: token (r, c) is in an inflated valid box (row-major order).

  boxes (K, 4) pixels (x1, y1, x2, y2), valid (K,) bool (padding rows False). Without a
  valid box, the central box [W/4, H/4, 3W/4, 3H/4] of the frame is used (upstream).
  inflate: upstream's --inflateroi (argument default 1.1, pretrain.sh 1.2).
  """
  gh, gw = grid_hw
  height, width = gh * patch, gw * patch
  boxes = jnp.asarray(boxes, jnp.float32).reshape(-1, 4)
  valid = jnp.asarray(valid, bool).reshape(-1)
  if boxes.shape[0] != valid.shape[0]:
    raise ValueError(f'{boxes.shape[0]} boxes but {valid.shape[0]} valid flags')
  central = jnp.array([[width / 4, height / 4, 3 * width / 4, 3 * height / 4]], jnp.float32)
  boxes = jnp.concatenate([inflate_boxes(boxes, inflate), central])
  valid = jnp.concatenate([valid, ~jnp.any(valid)[None]])
  r, c = jnp.meshgrid(jnp.arange(gh), jnp.arange(gw), indexing='ij')
  if reference == 'center':
    y, x = (r + 0.5) * patch, (c + 0.5) * patch
  elif reference == 'upstream':
    y = jnp.maximum(r * patch - patch / 2, 0.)
    x = jnp.maximum(c * patch - patch / 2, 0.)
  else:
    raise ValueError(f"reference must be 'center' or 'upstream', got {reference!r}")
  x, y = x.reshape(-1, 1), y.reshape(-1, 1)
  inside = ((x >= boxes[:, 0]) & (x <= boxes[:, 2]) & (y >= boxes[:, 1]) & (y <= boxes[:, 3])
            & valid[None])
  return jnp.any(inside, axis=1)


def tile_prior(prior_2d: jax.Array, num_slices: int) -> jax.Array:
  """The 2-D prior of one frame repeated over the T' time slices: (T' H' W',)."""
  return jnp.tile(jnp.asarray(prior_2d).reshape(-1), num_slices)


def focus_logits(prior: jax.Array, delta: float, logits: jax.Array | None = None) -> jax.Array:
  """logits + delta on ROI tokens (upstream `logits[priors] += delta`); logits default 0."""
  base = jnp.zeros(prior.shape, jnp.float32) if logits is None else logits.astype(jnp.float32)
  return base + delta * prior.astype(jnp.float32)


def focus_mask(key: jax.Array, prior: jax.Array, num_masked: int, *, delta: float = 2.0,
               logits: jax.Array | None = None, direction: str = 'mask') -> jax.Array:
  """FocusMAE mask (N,) bool with exactly `num_masked` True, biased by the ROI `prior`.

  direction 'mask': the masked set is drawn from softmax(logits + delta prior) (ROI
  masked more); 'visible': the N - num_masked visible tokens are (ROI masked less).
  logits: the token-probability network's output (AdaMAE); None = uniform.
  """
  z = focus_logits(prior, delta, logits)
  n = z.shape[-1]
  if not 0 < num_masked < n:
    raise ValueError(f'num_masked {num_masked} must lie in (0, {n})')
  if direction == 'mask':
    return _top_k_set(key, z, num_masked)
  if direction == 'visible':
    return ~_top_k_set(key, z, n - num_masked)
  raise ValueError(f"direction must be 'mask' or 'visible', got {direction!r}")
