"""FlowMDM's attention pieces: PCCAT's query input, masks, segment bias (Sec. 3).

Pose-Centric Cross-ATtention (PCCAT, Sec. 3.2): queries come from the noisy poses AND
the condition (a per-layer Linear(2d -> d) on `[LN(x), emb]`, upstream's
`custom_query_fn`), keys and values from the noisy poses only, so the condition
(timestep + per-frame text) can steer which poses a frame attends to but can never be
attended to itself.  Attention is local: |i - j| <= H (`rpe_horizon`), keys at padded
frames are masked and the outputs at padded frames are zeroed, as in x-transformers.
The attention itself is `jaxvision.nn.attention.MultiHeadAttention` with `pccat_query`
as its query function and upstream's names and PyTorch init (`pccat_attention`).

Blended Positional Encodings (BPE, Sec. 3.1) enter through the rotary angles (scaled
by the per-sample weight w: w = 0 is no rotation) and the additive bias (the segment
block-diagonal bias of the absolute stage).
"""

from __future__ import annotations

import functools
from typing import Any, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxvision.nn import attention
from jaxvision.nn import layers as nn_layers
from jaxvision.nn import transformer

NEG_INF = -jnp.inf
NAMES = ('to_q', 'to_k', 'to_v', 'to_out')   # upstream's x-transformers Attention


def positions_in_segment(segment_ids):
  """Frame index within its segment (restarts at 0 where the id changes); (B, T)."""
  t = jnp.arange(segment_ids.shape[-1])
  start = jnp.concatenate([jnp.ones_like(segment_ids[..., :1], bool),
                           segment_ids[..., 1:] != segment_ids[..., :-1]], axis=-1)
  first = jax.lax.cummax(jnp.where(start, t, 0), axis=segment_ids.ndim - 1)
  return t - first


def ape_positions(segment_ids, mask):
  """Absolute (APE) positions as upstream's collate writes them (`pos_pe_abs`): the frame
  index within its segment, and 0 at every padded frame (mask False); (B, T)."""
  return jnp.where(mask, positions_in_segment(segment_ids), 0)


def segment_bias(segment_ids):
  """(B, T, T) 0 where query and key share a segment, -inf elsewhere (`pe_bias`)."""
  same = segment_ids[..., :, None] == segment_ids[..., None, :]
  return jnp.where(same, 0.0, NEG_INF)


def attention_allowed(mask, horizon: int):
  """(B, T, T) key padding & local band |i - j| <= horizon (horizon < 0: no band)."""
  allowed = jnp.broadcast_to(mask[:, None, :], mask.shape[:1] + (mask.shape[1],) * 2)
  if horizon >= 0:
    idx = jnp.arange(mask.shape[1])
    allowed = allowed & attention.band_mask(idx, idx, horizon)
  return allowed


class SplitLinear(nn.Module):
  """torch.nn.Linear on the concatenation [x, cond] computed as x W_x + cond W_c + b:
  the same (2d, d) kernel, bias, init and names as `TorchLinear` on the concatenated
  input, without materialising the concatenation (nor slicing its gradient)."""
  features: int
  kernel_axes: Sequence[str] = ('mlp', 'embed')
  dtype_mm: Any = jnp.float32

  @nn.compact
  def __call__(self, x, cond):
    dx = x.shape[-1]
    fan_in = dx + cond.shape[-1]
    init = nn_layers.torch_uniform(fan_in)
    kernel = self.param('kernel', nn_layers.boxed(nn_layers.flat_init(init, 1),
                                                  *self.kernel_axes),
                        (fan_in, self.features), jnp.float32)
    bias = self.param('bias', nn_layers.boxed(init, self.kernel_axes[-1]), (self.features,),
                      jnp.float32)
    dt = jnp.dtype(self.dtype_mm)
    y = x.astype(dt) @ kernel[:dx].astype(dt) + cond.astype(dt) @ kernel[dx:].astype(dt)
    return y + bias.astype(dt)


def pccat_query(x, cond, *, dtype_mm: Any = jnp.float32):
  """PCCAT's query input Linear(2d -> d)([x, cond]); runs inside the attention's scope."""
  return SplitLinear(x.shape[-1], dtype_mm=dtype_mm, name='query_input')(x, cond)


def pccat_attention(num_heads: int = 4, head_dim: int = 64, dtype: Any = jnp.float32,
                    name: str | None = None) -> attention.MultiHeadAttention:
  """Self-attention whose queries also see the condition (`query_context`); no biases.

  Call as `attn(x, query_context=cond, mask=(B, 1, T, T), bias=..., rope=angles)`.
  """
  return attention.MultiHeadAttention(
      num_heads, head_dim=head_dim, use_bias=False, names=NAMES, torch_init=True,
      query_fn=functools.partial(pccat_query, dtype_mm=dtype), dtype_mm=dtype, name=name)


def pccat_block(i: int, *, num_heads: int, head_dim: int, ff_size: int,
                dtype: Any = jnp.float32, window: int | None = None) -> transformer.TransformerBlock:
  """Layer i of the denoiser: pre-LN [PCCAT, FF x exact GELU], upstream's flat names
  (`layer_{i}_attn_norm`, `layer_{i}_attn/{query_input, to_q, ...}`, `layer_{i}_ff_norm`,
  `layer_{i}_ff/{wi, wo}`), PyTorch's init and LayerNorm eps. `window`: the band
  |i - j| <= window computed block-wise (banded attention) instead of a dense mask."""
  return transformer.TransformerBlock(
      num_heads, head_dim=head_dim, mlp_dim=ff_size, activation='gelu', ln_eps=1e-5,
      use_bias=False, names={'attn_norm': f'layer_{i}_attn_norm', 'attn': f'layer_{i}_attn',
                             'mlp_norm': f'layer_{i}_ff_norm', 'mlp': f'layer_{i}_ff'},
      attn_names=NAMES, mlp_names=('wi', 'wo'), torch_init=True,
      query_fn=functools.partial(pccat_query, dtype_mm=dtype), tokens_axes=None,
      window=window, banded=window is not None, share_scope=True, dtype_mm=dtype,
      name=f'layer_{i}')
