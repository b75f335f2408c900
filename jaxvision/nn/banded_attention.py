"""Banded (local) attention whose time and memory grow linearly with sequence length.

Each query i attends to keys j with |i - j| <= window (causal: 0 <= i - j <= window),
Longformer's sliding window (Beltagy et al. 2020, Sec. 3.1) computed in blocks as
BigBird/Longformer's chunked form does: the sequence is cut into blocks of C >= window
positions, and the queries of block b see the keys of blocks b-1, b and b+1 (3C keys),
so a length-T sequence costs T * 3C scores instead of T^2. Key padding (`kv_valid`)
and segment restrictions (`segment_ids`: attend only within the same id, e.g.
FlowMDM's absolute stage) are evaluated per block from per-position vectors, never as
a (T, T) matrix. The result equals dense attention with the same band mask
(`jaxvision.nn.attention.dot_product_attention`) up to float rounding for every query
that has at least one allowed key (a fully masked row is uniform over its 3C block
keys here and over all T keys there).
"""

from __future__ import annotations

from typing import Optional

import jax
import jax.numpy as jnp


def _blocks_with_neighbours(x, c: int):
  """(B, n*C, ...) -> (B, n, 3C, ...): block b's keys are blocks b-1, b, b+1 (zero-padded)."""
  b, length = x.shape[:2]
  n = length // c
  pad = [(0, 0), (c, c)] + [(0, 0)] * (x.ndim - 2)
  xp = jnp.pad(x, pad)
  parts = [xp[:, s * c:(s + n) * c].reshape((b, n, c) + x.shape[2:]) for s in range(3)]
  return jnp.concatenate(parts, axis=2)


def banded_dot_product_attention(q, k, v, window: int, *, causal: bool = False,
                                 kv_valid=None, segment_ids=None,
                                 block_size: Optional[int] = None):
  """q (B, T, H, D), k/v (B, T, K, D) (self-attention, H a multiple of K) -> (B, T, H, D).

  kv_valid (B, T) bool: keys that may be attended; segment_ids (B, T) int: queries see
  keys of their own segment only; block_size C >= window (default max(window, 1)).
  """
  if window < 0:
    raise ValueError(f'banded attention needs a window >= 0, got {window}')
  b, t, h, d = q.shape
  if k.shape[:2] != (b, t) or v.shape != k.shape:
    raise ValueError(f'banded attention is self-attention: q {q.shape}, k {k.shape}, v {v.shape}')
  kv_heads = k.shape[2]
  if h % kv_heads:
    raise ValueError(f'{h} query heads are not a multiple of {kv_heads} key/value heads')
  c = block_size or max(window, 1)
  if c < window:
    raise ValueError(f'block_size {c} is smaller than the window {window}')
  g = h // kv_heads
  n = -(-t // c)
  pad = n * c - t

  def padt(x):   # pad the time axis to n * C
    return jnp.pad(x, [(0, 0), (0, pad)] + [(0, 0)] * (x.ndim - 2))

  valid = jnp.ones((b, t), bool) if kv_valid is None else jnp.asarray(kv_valid, bool)
  qb = padt(q / jnp.sqrt(d).astype(q.dtype)).reshape(b, n, c, kv_heads, g, d)
  kb = _blocks_with_neighbours(padt(k), c)            # (B, n, 3C, K, D)
  vb = _blocks_with_neighbours(padt(v), c)
  valid_b = _blocks_with_neighbours(padt(valid), c)   # padding and out-of-range keys: False

  q_pos = (jnp.arange(n)[:, None] * c + jnp.arange(c)[None])             # (n, C)
  k_pos = (jnp.arange(n)[:, None] * c - c + jnp.arange(3 * c)[None])     # (n, 3C)
  diff = q_pos[:, :, None] - k_pos[:, None, :]                            # (n, C, 3C)
  band = (diff >= 0) & (diff <= window) if causal else jnp.abs(diff) <= window
  allowed = band[None] & valid_b[:, :, None, :]                           # (B, n, C, 3C)
  if segment_ids is not None:
    seg = padt(jnp.asarray(segment_ids))
    seg_k = _blocks_with_neighbours(seg, c)                               # (B, n, 3C)
    allowed &= seg.reshape(b, n, c)[..., :, None] == seg_k[:, :, None, :]

  logits = jnp.einsum('bnckgd,bnskd->bnkgcs', qb, kb).astype(jnp.float32)
  logits = jnp.where(allowed[:, :, None, None], logits, jnp.finfo(jnp.float32).min)
  weights = jax.nn.softmax(logits, axis=-1).astype(v.dtype)
  out = jnp.einsum('bnkgcs,bnskd->bnckgd', weights, vb)
  return out.reshape(b, n * c, h, d)[:, :t]
