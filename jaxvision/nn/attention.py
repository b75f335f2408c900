"""Multi-head dot-product attention (Vaswani et al. 2017, Sec. 3.2, Eq. 1) with hooks.

softmax(Q K^T / sqrt(d_h) + bias, masked) V per head, then an output projection. One
module serves every attention in jaxvision:

* masks: any boolean mask broadcastable to (batch, heads, q, k) (True = may attend),
  plus the built-in `causal` and band `window` masks (|i - j| <= window; with causal,
  0 <= i - j <= window), and `key_padding_mask` helpers below;
* `bias`: an additive float bias broadcastable to (batch, heads, q, k) (e.g. a
  segment bias, ALiBi, relative-position tables);
* rotary embeddings (Su et al., RoFormer, Eq. 34): `rope` angles for q and the new k
  (`jaxvision.nn.positional.rope_frequencies`), `rope_kv` for cross-attention keys;
* a query-input function `query_fn(inputs_q, query_context) -> q_input`, run inside
  this module's scope before the query projection (FlowMDM's Pose-Centric
  Cross-Attention, Barquero et al. 2024, Sec. 3.2: queries from [x, condition], keys
  and values from x only);
* cross-attention (`inputs_kv` other than `inputs_q`);
* grouped-query heads (Ainslie et al. 2023, GQA): `num_kv_heads` key/value heads each
  shared by num_heads / num_kv_heads query heads (1 = multi-query);
* per-position masks `key_valid` (B, S) and `segment_ids` (B, T) (attend within the
  same id), which also drive `banded=True`: the band computed block-wise in time and
  memory linear in T (`jaxvision.nn.banded_attention`), for long sequences;
* a KV cache for autoregressive decoding (`decode=True`): `init` with the full-length
  input sizes the cache; each `apply(..., mutable=['cache'])` appends the new keys and
  values at `cache_index` and attends causally to everything cached so far.

Parameters: `query`/`key`/`value` kernels (width, heads, head_dim) with (heads,
head_dim) biases, `out` (heads, head_dim, out_features) — flax's MultiHeadDotProduct-
Attention layout, so big_vision checkpoints load; names and initialisers are fields,
so PyTorch ports keep theirs (`names=('to_q', 'to_k', 'to_v', 'to_out')`,
`torch_init=True`), and `fused_qkv` holds one (width, 3, heads, head_dim) kernel.
The softmax runs in float32 whatever `dtype_mm` is.
"""

from __future__ import annotations

from typing import Any, Callable, Optional, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxvision.nn import banded_attention
from jaxvision.nn import layers
from jaxvision.nn import positional

HEADS = ('batch', 'seq', 'heads', 'kv')


# --- Masks ------------------------------------------------------------------------------

def causal_mask(q_positions, k_positions):
  """(..., q, k) True where key position <= query position."""
  return jnp.asarray(k_positions)[..., None, :] <= jnp.asarray(q_positions)[..., :, None]


def band_mask(q_positions, k_positions, window: int, causal: bool = False):
  """(..., q, k) True where |i - j| <= window (causal: 0 <= i - j <= window)."""
  diff = jnp.asarray(q_positions)[..., :, None] - jnp.asarray(k_positions)[..., None, :]
  return (diff >= 0) & (diff <= window) if causal else jnp.abs(diff) <= window


def key_padding_mask(valid):
  """(B, k) valid keys -> (B, 1, 1, k), broadcastable against (B, heads, q, k)."""
  return jnp.asarray(valid, bool)[:, None, None, :]


def combine_masks(*masks):
  """Logical AND of the masks that are not None (None if all are)."""
  masks = [m for m in masks if m is not None]
  if not masks:
    return None
  out = masks[0]
  for m in masks[1:]:
    out = jnp.logical_and(out, m)
  return out


def dot_product_attention(q, k, v, *, mask=None, bias=None, dropout_rng=None,
                          dropout_rate: float = 0.0, scale: Optional[float] = None):
  """q (B, T, H, D), k/v (B, S, K, D) with H a multiple of K -> (B, T, H, D).

  Query head h uses key/value head h // (H / K) (grouped-query attention). mask (bool)
  and bias broadcast to (B, H, T, S); masked logits get float32's minimum, so a fully
  masked row attends uniformly instead of producing NaN.
  """
  b, t, h, d = q.shape
  kv_heads = k.shape[2]
  if h % kv_heads:
    raise ValueError(f'{h} query heads are not a multiple of {kv_heads} key/value heads')
  groups = h // kv_heads
  # Dividing by sqrt(d) (not multiplying by d^-0.5) matches flax's module to the bit.
  q = q / jnp.sqrt(d).astype(q.dtype) if scale is None else q * jnp.asarray(scale, q.dtype)
  if groups == 1:
    logits = jnp.einsum('bthd,bshd->bhts', q, k)
  else:
    qg = q.reshape(b, t, kv_heads, groups, d)
    logits = jnp.einsum('btkgd,bskd->bkgts', qg, k).reshape(b, h, t, k.shape[1])
  logits = logits.astype(jnp.float32)
  if bias is not None:
    logits = logits + bias
  if mask is not None:
    logits = jnp.where(mask, logits, jnp.finfo(jnp.float32).min)
  weights = jax.nn.softmax(logits, axis=-1)
  if dropout_rate > 0.0 and dropout_rng is not None:
    keep = jax.random.bernoulli(dropout_rng, 1.0 - dropout_rate, weights.shape)
    weights = jnp.where(keep, weights / (1.0 - dropout_rate), 0.0)
  weights = weights.astype(v.dtype)
  if groups == 1:
    return jnp.einsum('bhts,bshd->bthd', weights, v)
  weights = weights.reshape(b, kv_heads, groups, t, k.shape[1])
  return jnp.einsum('bkgts,bskd->btkgd', weights, v).reshape(b, t, h, d)


# --- The module -------------------------------------------------------------------------

class MultiHeadAttention(nn.Module):
  """`__call__(inputs_q, inputs_kv=None, *, mask, bias, rope, rope_kv, query_context,
  key_valid, segment_ids, train) -> (B, T, out_features)`; see the module docstring.

  rope: angles (B, T, R) for the queries and, in self-attention, the keys; rope_kv:
  angles (B, S, R) for cross-attention keys. key_valid (B, S) bool; segment_ids (B, T).
  """
  num_heads: int
  head_dim: Optional[int] = None          # default: width // num_heads
  num_kv_heads: Optional[int] = None      # default: num_heads (plain multi-head)
  out_features: Optional[int] = None      # default: the width of inputs_q
  use_bias: bool = True
  causal: bool = False
  window: Optional[int] = None            # band |i - j| <= window
  banded: bool = False                    # compute the band block-wise (linear in T)
  dropout: float = 0.0                    # on the attention weights
  decode: bool = False
  fused_qkv: bool = False
  names: Sequence[str] = ('query', 'key', 'value', 'out')  # fused: ('qkv', _, _, 'out')
  kernel_init: layers.Init = nn.initializers.xavier_uniform()
  bias_init: layers.Init = nn.initializers.zeros
  torch_init: bool = False
  query_fn: Optional[Callable[..., jax.Array]] = None
  dtype_mm: Any = jnp.float32

  def _dense(self, features, in_dims, kernel_axes, name):
    return layers.Dense(features, in_dims=in_dims, use_bias=self.use_bias,
                        kernel_axes=kernel_axes, kernel_init=self.kernel_init,
                        bias_init=self.bias_init, torch_init=self.torch_init,
                        dtype_mm=self.dtype_mm, name=name)

  @nn.compact
  def __call__(self, inputs_q, inputs_kv=None, *, mask=None, bias=None, rope=None,
               rope_kv=None, query_context=None, key_valid=None, segment_ids=None,
               train: bool = False):
    self_attention = inputs_kv is None
    inputs_kv = inputs_q if self_attention else inputs_kv
    width = inputs_q.shape[-1]
    if self.head_dim is None and width % self.num_heads:
      raise ValueError(f'width {width} is not divisible by num_heads {self.num_heads}')
    hd = self.head_dim or width // self.num_heads
    kv_heads = self.num_kv_heads or self.num_heads
    if self.num_heads % kv_heads:
      raise ValueError(f'num_heads {self.num_heads} is not a multiple of num_kv_heads {kv_heads}')
    if self.decode and not self_attention:
      raise ValueError('the KV cache (decode=True) is for self-attention only')

    q_input = inputs_q
    if self.query_fn is not None:
      q_input = self.query_fn(inputs_q, query_context)
    elif query_context is not None:
      raise ValueError('query_context was given but the attention has no query_fn')

    if self.fused_qkv:
      if not self_attention or kv_heads != self.num_heads or self.query_fn is not None:
        raise ValueError('fused_qkv needs plain self-attention (no GQA, no query_fn)')
      qkv = self._dense((3, self.num_heads, hd), 1, ('embed', None, 'heads', 'kv'),
                        self.names[0])(inputs_q)
      q, k, v = qkv[..., 0, :, :], qkv[..., 1, :, :], qkv[..., 2, :, :]
    else:
      q = self._dense((self.num_heads, hd), 1, ('embed', 'heads', 'kv'), self.names[0])(q_input)
      k = self._dense((kv_heads, hd), 1, ('embed', 'heads', 'kv'), self.names[1])(inputs_kv)
      v = self._dense((kv_heads, hd), 1, ('embed', 'heads', 'kv'), self.names[2])(inputs_kv)
    q = nn.with_logical_constraint(q, HEADS)
    k = nn.with_logical_constraint(k, HEADS)
    v = nn.with_logical_constraint(v, HEADS)
    if rope is not None:
      q = positional.apply_rope(q, _per_head(rope))
    rope_k = rope if self_attention else rope_kv
    if rope_k is not None:
      k = positional.apply_rope(k, _per_head(rope_k))

    out_dense = layers.Dense(self.out_features or width, in_dims=2, use_bias=self.use_bias,
                             kernel_axes=('heads', 'kv', 'embed'), bias_axes=('embed',),
                             kernel_init=self.kernel_init, bias_init=self.bias_init,
                             torch_init=self.torch_init, dtype_mm=self.dtype_mm,
                             name=self.names[3])
    if self.banded:
      if self.window is None or not self_attention or self.decode:
        raise ValueError('banded attention needs a window and plain self-attention (no decode)')
      if mask is not None or bias is not None or (train and self.dropout > 0):
        raise ValueError('banded attention takes key_valid/segment_ids, not dense masks, '
                         'biases or attention dropout')
      y = banded_attention.banded_dot_product_attention(
          q, k, v, self.window, causal=self.causal, kv_valid=key_valid, segment_ids=segment_ids)
      return out_dense(nn.with_logical_constraint(y, HEADS))

    t, s = q.shape[1], k.shape[1]
    q_pos, k_pos = jnp.arange(t), jnp.arange(s)
    if key_valid is not None:
      mask = combine_masks(mask, key_padding_mask(key_valid))
    if segment_ids is not None:
      if not self_attention:
        raise ValueError('segment_ids are for self-attention')
      mask = combine_masks(mask, (segment_ids[:, :, None] == segment_ids[:, None, :])[:, None])
    extra = None
    if self.decode:
      k, v, q_pos, k_pos, extra = self._update_cache(k, v)
    if self.causal:
      extra = combine_masks(extra, causal_mask(q_pos, k_pos))
    if self.window is not None:
      extra = combine_masks(extra, band_mask(q_pos, k_pos, self.window, self.causal))
    mask = combine_masks(mask, extra)

    rate = self.dropout if train else 0.0
    rng = self.make_rng('dropout') if rate > 0 else None
    y = dot_product_attention(q, k, v, mask=mask, bias=bias, dropout_rng=rng, dropout_rate=rate)
    return out_dense(nn.with_logical_constraint(y, HEADS))

  def _update_cache(self, k, v):
    """Appends k, v (B, T, K, D) at cache_index; returns the full cache and positions."""
    initialised = self.has_variable('cache', 'cached_key')
    cached_k = self.variable('cache', 'cached_key', jnp.zeros, k.shape, k.dtype)
    cached_v = self.variable('cache', 'cached_value', jnp.zeros, v.shape, v.dtype)
    index = self.variable('cache', 'cache_index', lambda: jnp.array(0, jnp.int32))
    t = k.shape[1]
    if not initialised:   # model.init: the input's length sizes the cache.
      return k, v, jnp.arange(t), jnp.arange(t), None
    max_len = cached_k.value.shape[1]
    if t > max_len:
      raise ValueError(f'{t} new tokens exceed the KV cache of length {max_len}')
    i = index.value
    start = (0, i, 0, 0)
    cached_k.value = jax.lax.dynamic_update_slice(cached_k.value, k.astype(cached_k.value.dtype),
                                                  start)
    cached_v.value = jax.lax.dynamic_update_slice(cached_v.value, v.astype(cached_v.value.dtype),
                                                  start)
    index.value = i + t
    k_pos = jnp.arange(max_len)
    filled = k_pos < i + t    # slots past the written tokens hold zeros
    return cached_k.value, cached_v.value, i + jnp.arange(t), k_pos, filled


def _per_head(angles):
  """Rotary angles (B, T, R) or (T, R) -> broadcastable against (B, T, heads, D)."""
  return angles[..., None, :]
