"""FlowMDM's building blocks: PyTorch-initialised linears, PCCAT attention, masks (Sec. 3).

Pose-Centric Cross-ATtention (PCCAT, Sec. 3.2): queries come from the noisy poses AND
the condition (a per-layer Linear(2d -> d) on `[LN(x), emb]`, upstream's
`custom_query_fn`), keys and values from the noisy poses only, so the condition
(timestep + per-frame text) can steer which poses a frame attends to but can never be
attended to itself.  Attention is local: |i - j| <= H (`rpe_horizon`), keys at padded
frames are masked and the outputs at padded frames are zeroed, as in x-transformers.

Blended Positional Encodings (BPE, Sec. 3.1) enter here through `freqs` (rotary angles
scaled by the per-sample weight w: w = 0 is no rotation) and `bias` (the segment
block-diagonal bias of the absolute stage).
"""

from __future__ import annotations

import math
from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

NEG_INF = -jnp.inf


def _uniform(bound):
  def init(key, shape, dtype=jnp.float32):
    return jax.random.uniform(key, shape, dtype, -bound, bound)
  return init


class TorchLinear(nn.Module):
  """y = x W + b with PyTorch's default init (U(+-1/sqrt(fan_in)) for W and b)."""
  features: int
  use_bias: bool = True
  kernel_axes: Sequence[str | None] = ('embed', 'mlp')
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, x):
    fan_in = x.shape[-1]
    bound = 1.0 / math.sqrt(fan_in)
    kernel = self.param('kernel', nn.with_logical_partitioning(_uniform(bound),
                                                               tuple(self.kernel_axes)),
                        (fan_in, self.features), jnp.float32)
    y = jnp.einsum('...i,io->...o', x.astype(self.dtype), kernel.astype(self.dtype))
    if self.use_bias:
      bias = self.param('bias', nn.with_logical_partitioning(_uniform(bound),
                                                             (self.kernel_axes[-1],)),
                        (self.features,), jnp.float32)
      y = y + bias.astype(self.dtype)
    return y


def layer_norm(name: str):
  """PyTorch's LayerNorm (eps 1e-5), parameters on the `norm` axis."""
  return nn.LayerNorm(epsilon=1e-5, name=name,
                      scale_init=nn.with_logical_partitioning(nn.initializers.ones, ('norm',)),
                      bias_init=nn.with_logical_partitioning(nn.initializers.zeros, ('norm',)))


def positions_in_segment(segment_ids):
  """Frame index within its segment (restarts at 0 where the id changes); (B, T)."""
  t = jnp.arange(segment_ids.shape[-1])
  start = jnp.concatenate([jnp.ones_like(segment_ids[..., :1], bool),
                           segment_ids[..., 1:] != segment_ids[..., :-1]], axis=-1)
  first = jax.lax.cummax(jnp.where(start, t, 0), axis=segment_ids.ndim - 1)
  return t - first


def segment_bias(segment_ids):
  """(B, T, T) 0 where query and key share a segment, -inf elsewhere (`pe_bias`)."""
  same = segment_ids[..., :, None] == segment_ids[..., None, :]
  return jnp.where(same, 0.0, NEG_INF)


def attention_allowed(mask, horizon: int):
  """(B, T, T) key padding & local band |i - j| <= horizon (horizon < 0: no band)."""
  allowed = jnp.broadcast_to(mask[:, None, :], mask.shape[:1] + (mask.shape[1],) * 2)
  if horizon >= 0:
    idx = jnp.arange(mask.shape[1])
    allowed = allowed & (jnp.abs(idx[:, None] - idx[None, :]) <= horizon)
  return allowed


class PCCATAttention(nn.Module):
  """Self-attention whose queries also see the condition (one block of Fig. 3)."""
  num_heads: int = 4
  head_dim: int = 64
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, x, cond, *, freqs, allowed, bias, mask):
    b, t, d = x.shape
    inner = self.num_heads * self.head_dim
    q_in = TorchLinear(d, kernel_axes=('mlp', 'embed'), dtype=self.dtype,
                       name='query_input')(jnp.concatenate([x, cond], axis=-1))
    proj = lambda n: TorchLinear(inner, use_bias=False, kernel_axes=('embed', 'heads'),  # pylint: disable=g-long-lambda
                                 dtype=self.dtype, name=n)
    q = proj('to_q')(q_in).reshape(b, t, self.num_heads, self.head_dim)
    k = proj('to_k')(x).reshape(b, t, self.num_heads, self.head_dim)
    v = proj('to_v')(x).reshape(b, t, self.num_heads, self.head_dim)
    if freqs is not None:
      from jaxvision.nn import positional  # pylint: disable=g-import-not-at-top
      q = positional.apply_rope(q, freqs[:, :, None, :])
      k = positional.apply_rope(k, freqs[:, :, None, :])
    logits = jnp.einsum('bqhd,bkhd->bhqk', q, k).astype(jnp.float32)
    logits = logits * self.head_dim ** -0.5
    if bias is not None:
      logits = logits + bias[:, None]
    logits = jnp.where(allowed[:, None], logits, jnp.finfo(jnp.float32).min)
    weights = jax.nn.softmax(logits, axis=-1).astype(self.dtype)
    out = jnp.einsum('bhqk,bkhd->bqhd', weights, v)
    out = TorchLinear(d, use_bias=False, kernel_axes=('heads', 'embed'), dtype=self.dtype,
                      name='to_out')(out.reshape(b, t, inner))
    return out * mask[..., None].astype(out.dtype)


class FeedForward(nn.Module):
  """Linear(d -> ff) -> exact GELU -> Linear(ff -> d) (x-transformers' FeedForward)."""
  hidden: int
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, x):
    h = TorchLinear(self.hidden, kernel_axes=('embed', 'mlp'), dtype=self.dtype, name='wi')(x)
    h = jax.nn.gelu(h, approximate=False)
    return TorchLinear(x.shape[-1], kernel_axes=('mlp', 'embed'), dtype=self.dtype,
                       name='wo')(h)
