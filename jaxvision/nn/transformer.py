"""One Transformer block (Vaswani et al. 2017, Sec. 3.1), pre- or post-LayerNorm.

pre-LN (ViT Eqs. 2-3, GPT-2, CLIP, x-transformers):
    x = x + drop(keep_attn * Attn(LN(x)))            [+ x = x + CrossAttn(LN(x), context)]
    x = x + drop(keep_mlp  * MLP(LN(x)))
post-LN (the original Transformer): x = LN(x + Attn(x)), x = LN(x + MLP(x)).

`keep` carries stochastic-depth factors (Huang et al. 2016) drawn by the caller (one
per batch or per sample; a traced scalar, one draw per batch, skips a dropped
sub-layer's computation with `lax.cond` when the sub-layer holds no dropout or cache),
`query_mask` (B, T) zeroes the attention outputs (not the MLP's) at padded queries (as
x-transformers does), and every attention hook of `jaxvision.nn.attention` (masks,
bias, rotary angles, query_fn, GQA, causal/band, KV cache) passes through.

Sub-module names are fields (`names`) so that each model keeps the parameter tree its
checkpoints use (big_vision's `LayerNorm_0/MultiHeadDotProductAttention_0/...`, CLIP's
`ln_1/attn/ln_2/mlp`, FlowMDM's flat `layer_{i}_attn_norm/...`). `share_scope=True`
puts the sub-modules directly in the parent's scope (no block level in the tree), for
layouts like FlowMDM's where each layer's modules sit beside the model's own.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping, Optional, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxvision.nn import attention
from jaxvision.nn import layers

TOKENS = ('batch', 'seq', 'embed')

DEFAULT_NAMES = {
    'attn_norm': 'LayerNorm_0', 'attn': 'MultiHeadDotProductAttention_0',
    'mlp_norm': 'LayerNorm_1', 'mlp': 'MlpBlock_0',
    'cross_norm': 'LayerNorm_cross', 'cross_attn': 'CrossAttention_0',
}


class TransformerBlock(nn.Module):
  """`__call__(x, context=None, *, mask, bias, rope, query_context, cross_mask, query_mask,
  key_valid, segment_ids, keep, train) -> x`; see the module docstring."""
  num_heads: int
  head_dim: Optional[int] = None
  num_kv_heads: Optional[int] = None
  mlp_dim: Optional[int] = None            # default 4 x width
  activation: str = 'gelu_tanh'
  norm: str = 'pre'                        # 'pre' or 'post'
  ln_eps: float = 1e-6
  dropout: float = 0.0                     # residual branches and inside the MLP
  attn_dropout: float = 0.0
  use_bias: bool = True
  causal: bool = False
  window: Optional[int] = None
  banded: bool = False                     # block-wise band, linear in T (needs window)
  decode: bool = False
  fused_qkv: bool = False
  query_fn: Optional[Callable[..., jax.Array]] = None
  names: Optional[Mapping[str, str]] = None   # overrides of DEFAULT_NAMES
  attn_names: Sequence[str] = ('query', 'key', 'value', 'out')
  mlp_names: Sequence[str] = ('Dense_0', 'Dense_1')
  attn_kernel_init: layers.Init = nn.initializers.xavier_uniform()
  mlp_kernel_init: layers.Init = nn.initializers.xavier_uniform()
  mlp_bias_init: layers.Init = nn.initializers.zeros
  torch_init: bool = False
  tokens_axes: Optional[Sequence[Optional[str]]] = TOKENS   # None: no activation constraint
  share_scope: bool = False
  dtype_mm: Any = jnp.float32

  def _names(self):
    return {**DEFAULT_NAMES, **(self.names or {})}

  def _constrain(self, x):
    return x if self.tokens_axes is None else nn.with_logical_constraint(x, tuple(self.tokens_axes))

  def _attention(self, name, cross: bool):
    return attention.MultiHeadAttention(
        self.num_heads, head_dim=self.head_dim, num_kv_heads=self.num_kv_heads,
        use_bias=self.use_bias, causal=self.causal and not cross,
        window=None if cross else self.window, banded=self.banded and not cross,
        dropout=self.attn_dropout,
        decode=self.decode and not cross, fused_qkv=self.fused_qkv and not cross,
        names=tuple(self.attn_names), kernel_init=self.attn_kernel_init,
        torch_init=self.torch_init, query_fn=None if cross else self.query_fn,
        dtype_mm=self.dtype_mm, name=name)

  def _skippable(self, keep, train) -> bool:
    """A batch-wide (scalar, traced) keep factor at apply time with nothing random or
    stateful inside the sub-layers: `lax.cond` may skip the dropped sub-layer."""
    if keep is None or isinstance(keep, (int, float)) or jnp.ndim(keep) != 0:
      return False
    if self.is_initializing() or self.decode:
      return False
    return not (train and (self.dropout > 0 or self.attn_dropout > 0))

  def _residual(self, x, y, keep, train):
    if self.dropout:
      y = nn.Dropout(rate=self.dropout)(y, deterministic=not train)
    if keep is not None:
      y = keep * y
    return self._constrain(x + y)

  @nn.compact
  def __call__(self, x, context=None, *, mask=None, bias=None, rope=None, query_context=None,
               cross_mask=None, query_mask=None, key_valid=None, segment_ids=None,
               keep=(None, None), train: bool = False):
    if self.share_scope:
      nn.share_scope(self, self.parent)
    if self.norm not in ('pre', 'post'):
      raise ValueError(f"norm must be 'pre' or 'post', got {self.norm!r}")
    names = self._names()
    pre = self.norm == 'pre'
    norm = lambda key: layers.layer_norm(names[key], self.ln_eps)  # pylint: disable=g-long-lambda
    x = self._constrain(x)

    def sublayer(x, norm_key, fn, keep_factor, is_attention=True):
      def branch(x, keep_factor):
        y = fn(norm(norm_key)(x) if pre else x)
        if query_mask is not None and is_attention:
          y = y * query_mask[..., None].astype(y.dtype)
        return self._residual(x, y, keep_factor, train)
      if self._skippable(keep_factor, train):
        # One draw for the whole batch: a dropped sub-layer is not computed at all
        # (x + 0 * f(x) = x for finite f), as upstream's Python-level skip.
        x = jax.lax.cond(keep_factor > 0, lambda x: branch(x, None), self._constrain, x)
      else:
        x = branch(x, keep_factor)
      return x if pre else norm(norm_key)(x)

    attn = self._attention(names['attn'], cross=False)
    x = sublayer(x, 'attn_norm',
                 lambda y: attn(y, mask=mask, bias=bias, rope=rope, query_context=query_context,
                                key_valid=key_valid, segment_ids=segment_ids, train=train),
                 keep[0])
    if context is not None:
      cross = self._attention(names['cross_attn'], cross=True)
      x = sublayer(x, 'cross_norm', lambda y: cross(y, context, mask=cross_mask, train=train),
                   None)
    mlp = layers.Mlp(self.mlp_dim, activation=self.activation, dropout=self.dropout,
                     names=tuple(self.mlp_names), kernel_init=self.mlp_kernel_init,
                     bias_init=self.mlp_bias_init, torch_init=self.torch_init,
                     dtype_mm=self.dtype_mm, name=names['mlp'])
    return sublayer(x, 'mlp_norm', lambda y: mlp(y, train=train), keep[1], is_attention=False)
