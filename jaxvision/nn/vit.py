"""Vision Transformer (ViT) with big_vision's parameter layout.

The model of Dosovitskiy et al., "An Image is Worth 16x16 Words: Transformers for
Image Recognition at Scale" (ICLR 2021), Sec. 3.1, Eqs. 1-4: non-overlapping patches
are linearly embedded (a strided convolution), a position embedding is added, a stack
of pre-LayerNorm encoder blocks (multi-head self-attention, then a GELU MLP, each in a
residual branch) transforms the tokens, and a pooled token feeds a linear head.

The parameter tree (names and shapes) equals that of google-research/big_vision's
`big_vision/models/vit.py`, so that its public `.npz` checkpoints load with
`jaxvision.nn.vit_checkpoint.load_big_vision_npz`. Like big_vision it offers learned
or fixed 2-D sin-cos position embeddings (MoCo v3 style), pooling by global average
('gap'), a class token ('tok'), the first token ('0'), multi-head attention pooling
('map', Zhai et al., "Scaling Vision Transformers", 2022) or none ('none'), an
optional tanh pre-logits layer and a zero-initialised head.

Where this file differs from big_vision:
* every parameter carries logical axis names (`nn.with_logical_partitioning`) and
  the token stream is constrained to ('batch', 'seq', 'embed') at block boundaries;
* parameters are always float32; `dtype_mm` only sets the matmul dtype, while the
  residual stream, LayerNorms and the attention softmax stay in float32;
* `out['encoded']` excludes the class token for pool_type 'tok';
* no `scan`/remat option (the checkpoint loader converts scanned checkpoints);
* attention and blocks are `jaxvision.nn.attention` / `jaxvision.nn.transformer`,
  configured to big_vision's names and initialisers.
"""

from __future__ import annotations

from typing import Any, Optional, Sequence, Union

import flax.linen as nn
import jax.numpy as jnp
import numpy as np

from jaxvision.nn import attention
from jaxvision.nn import layers
from jaxvision.nn import transformer
from jaxvision.nn.layers import boxed

# Logical names of the token stream (batch, tokens, width).
TOKENS = ('batch', 'seq', 'embed')

_xavier = nn.initializers.xavier_uniform()
_lecun = nn.initializers.lecun_normal()
_zeros = nn.initializers.zeros




# Table 2 of Zhai et al., "Scaling Vision Transformers" (arXiv:2106.04560), plus the
# shape-optimised So400m of Alabdulmohsin et al. (arXiv:2305.13035).
#        name:   (width, depth, mlp_dim, num_heads)
VARIANTS = {
    'Ti': (192, 12, 768, 3),
    'S': (384, 12, 1536, 6),
    'M': (512, 12, 2048, 8),
    'B': (768, 12, 3072, 12),
    'L': (1024, 24, 4096, 16),
    'So400m': (1152, 27, 4304, 16),
    'H': (1280, 32, 5120, 16),
    'g': (1408, 40, 6144, 16),
    'G': (1664, 48, 8192, 16),
}


def decode_variant(variant: Optional[str]) -> dict[str, Any]:
  """'B/16' -> dict(width=768, depth=12, mlp_dim=3072, num_heads=12, patch_size=(16, 16))."""
  if variant is None:
    return {}
  name, _, patch = variant.partition('/')
  if name not in VARIANTS:
    raise ValueError(f'unknown ViT variant {variant!r}; known sizes: {sorted(VARIANTS)}')
  width, depth, mlp_dim, num_heads = VARIANTS[name]
  cfg = dict(width=width, depth=depth, mlp_dim=mlp_dim, num_heads=num_heads)
  if patch:
    cfg['patch_size'] = (int(patch), int(patch))
  return cfg


def posemb_sincos_2d(h: int, w: int, width: int, temperature: float = 10_000.) -> np.ndarray:
  """Fixed 2-D position embedding of shape (1, h*w, width), tokens in row-major order.

  Channels are [sin(x w_k), cos(x w_k), sin(y w_k), cos(y w_k)] with x the column and
  y the row of the patch and w_k = temperature**(-k / (width/4 - 1)) (MoCo v3).
  """
  if width % 4:
    raise ValueError(f'sincos2d position embedding needs width % 4 == 0, got {width}')
  quarter = width // 4
  omega = 1.0 / temperature ** (np.arange(quarter) / max(quarter - 1, 1))
  y, x = np.mgrid[:h, :w]
  x = x.reshape(-1, 1) * omega[None]
  y = y.reshape(-1, 1) * omega[None]
  pe = np.concatenate([np.sin(x), np.cos(x), np.sin(y), np.cos(y)], axis=1)
  return pe[None].astype(np.float32)


def mlp_block(mlp_dim: Optional[int] = None, dropout: float = 0.0,
             dtype_mm: Any = 'float32', name: Optional[str] = None) -> layers.Mlp:
  """Transformer feed-forward block: Dense -> GELU (tanh) -> dropout -> Dense."""
  return layers.Mlp(mlp_dim, activation='gelu_tanh', dropout=dropout, kernel_init=_xavier,
                    bias_init=nn.initializers.normal(stddev=1e-6), dtype_mm=dtype_mm, name=name)


def mha(num_heads: int, dtype_mm: Any = 'float32',
                                 name: Optional[str] = None) -> attention.MultiHeadAttention:
  """flax's MultiHeadDotProductAttention parameters: query/key/value (width, heads,
  head_dim) kernels with (heads, head_dim) biases, out (heads, head_dim, width)."""
  return attention.MultiHeadAttention(num_heads, kernel_init=_xavier, dtype_mm=dtype_mm, name=name)


def _layer_norm(name):
  return layers.layer_norm(name, 1e-6)


def encoder_block(mlp_dim: Optional[int] = None, num_heads: int = 12,
                   dropout: float = 0.0, dtype_mm: Any = 'float32',
                   name: Optional[str] = None) -> transformer.TransformerBlock:
  """Pre-LN encoder block: x + MHSA(LN(x)), then x + MLP(LN(x)) (ViT Eqs. 2-3)."""
  return transformer.TransformerBlock(
      num_heads, mlp_dim=mlp_dim, activation='gelu_tanh', norm='pre', ln_eps=1e-6,
      dropout=dropout, attn_kernel_init=_xavier, mlp_kernel_init=_xavier,
      mlp_bias_init=nn.initializers.normal(stddev=1e-6), tokens_axes=TOKENS,
      dtype_mm=dtype_mm, name=name)


class Encoder(nn.Module):
  """`depth` encoder blocks named encoderblock_{i}, then a final LayerNorm."""
  depth: int
  mlp_dim: Optional[int] = None
  num_heads: int = 12
  dropout: float = 0.0
  dtype_mm: Any = 'float32'

  @nn.compact
  def __call__(self, x, *, train: bool = False):
    out = {}
    for i in range(self.depth):
      x = encoder_block(self.mlp_dim, self.num_heads, self.dropout, self.dtype_mm,
                         name=f'encoderblock_{i}')(x, train=train)
      out[f'block{i:02d}'] = x
    out['pre_ln'] = x
    return _layer_norm('encoder_norm')(x), out


class MAPHead(nn.Module):
  """Multihead attention pooling: a learned probe attends to the tokens.

  (n, l, d) tokens -> (n, d). The probe is the single query; the attended probe goes
  through a residual LN + MLP, as in big_vision's MAPHead.
  """
  mlp_dim: Optional[int] = None
  num_heads: int = 12
  dropout: float = 0.0
  dtype_mm: Any = 'float32'

  @nn.compact
  def __call__(self, x, *, train: bool = False):
    n, _, d = x.shape
    probe = self.param('probe', boxed(_xavier, None, None, 'embed'), (1, 1, d), jnp.float32)
    probe = jnp.tile(probe, [n, 1, 1])
    x = mha(self.num_heads, dtype_mm=self.dtype_mm,
                                     name='MultiHeadDotProductAttention_0')(probe, x)
    x = x.astype(jnp.float32)
    y = _layer_norm('LayerNorm_0')(x)
    x = x + mlp_block(self.mlp_dim, self.dropout, self.dtype_mm, name='MlpBlock_0')(y, train=train)
    return x[:, 0]


def _pair(size: Union[int, Sequence[int]]) -> tuple[int, int]:
  return (size, size) if isinstance(size, int) else tuple(size)


class ViT(nn.Module):
  """Vision Transformer; `__call__(image, *, train) -> (logits, out)`.

  image: (n, H, W, C). logits: (n, num_classes), or per token (n, l, num_classes) for
  pool_type 'none'; without a head (num_classes 0/None) the pre-logits are returned.
  out holds 'stem', 'with_posemb', 'encoder' (per-block tokens), 'encoded' (tokens
  after encoder_norm, class token dropped), 'head_input', 'pre_logits',
  'pre_logits_2d' (per-patch, (n, h, w, d)) and, with a head, 'logits', 'logits_2d'.
  """
  num_classes: Optional[int] = None
  patch_size: Union[int, Sequence[int]] = (16, 16)
  width: int = 768
  depth: int = 12
  mlp_dim: Optional[int] = None  # Defaults to 4x width.
  num_heads: int = 12
  posemb: str = 'learn'  # Or 'sincos2d'.
  rep_size: Union[int, bool] = False  # True: a width-sized pre-logits layer.
  dropout: float = 0.0
  pool_type: str = 'gap'  # 'gap', 'tok', '0', 'map' or 'none'.
  head_zeroinit: bool = True
  dtype_mm: Any = 'float32'

  @nn.compact
  def __call__(self, image, *, train: bool):
    out = {}
    patch = _pair(self.patch_size)
    # flax allows a logical name once per array, so only the first patch dim is 'patch'.
    x = out['stem'] = nn.Conv(
        self.width, patch, strides=patch, padding='VALID', dtype=self.dtype_mm,
        kernel_init=boxed(_lecun, 'patch', None, 'channels', 'embed'),
        bias_init=boxed(_zeros, 'embed'), name='embedding')(image)
    n, h, w, c = x.shape
    x = jnp.reshape(x, [n, h * w, c]).astype(jnp.float32)

    # The position embedding is added before the class token is prepended.
    if self.posemb == 'learn':
      pe = self.param('pos_embedding',
                      boxed(nn.initializers.normal(stddev=1 / np.sqrt(c)), None, 'seq', 'embed'),
                      (1, h * w, c), jnp.float32)
    elif self.posemb == 'sincos2d':
      pe = jnp.asarray(posemb_sincos_2d(h, w, c))
    else:
      raise ValueError(f'unknown posemb type {self.posemb!r}')
    x = out['with_posemb'] = x + pe

    if self.pool_type == 'tok':
      cls = self.param('cls', boxed(_zeros, None, None, 'embed'), (1, 1, c), jnp.float32)
      x = jnp.concatenate([jnp.tile(cls, [n, 1, 1]), x], axis=1)

    x = nn.with_logical_constraint(x, TOKENS)
    x = nn.Dropout(rate=self.dropout)(x, deterministic=not train)
    x, out['encoder'] = Encoder(self.depth, self.mlp_dim, self.num_heads, self.dropout,
                                self.dtype_mm, name='Transformer')(x, train=train)
    encoded = x

    if self.pool_type == 'map':
      x = MAPHead(self.mlp_dim, self.num_heads, dtype_mm=self.dtype_mm, name='MAPHead_0')(x)
    elif self.pool_type == 'gap':
      x = jnp.mean(x, axis=1)
    elif self.pool_type == '0':
      x = x[:, 0]
    elif self.pool_type == 'tok':
      x = x[:, 0]
      encoded = encoded[:, 1:]
    elif self.pool_type != 'none':
      raise ValueError(f'unknown pool type {self.pool_type!r}')
    out['encoded'] = encoded
    out['head_input'] = x
    x_2d = jnp.reshape(encoded, [n, h, w, -1])

    if self.rep_size:
      rep_size = self.width if self.rep_size is True else self.rep_size
      hid = nn.Dense(rep_size, dtype=self.dtype_mm, name='pre_logits',
                     kernel_init=boxed(_lecun, 'embed', None), bias_init=boxed(_zeros, None))
      x_2d = nn.tanh(hid(x_2d))
      x = nn.tanh(hid(x))
    out['pre_logits_2d'] = x_2d
    out['pre_logits'] = x

    if self.num_classes:
      kernel_init = _zeros if self.head_zeroinit else _lecun
      head = nn.Dense(self.num_classes, dtype=self.dtype_mm, name='head',
                      kernel_init=boxed(kernel_init, 'embed', 'classes'),
                      bias_init=boxed(_zeros, 'classes'))
      x_2d = out['logits_2d'] = head(x_2d)
      x = out['logits'] = head(x)
    return x, out


def make_vit(variant: Optional[str] = None, **kwargs) -> ViT:
  """ViT from a variant string ('Ti/16', 'B/32', ...); kwargs override its fields."""
  return ViT(**{**decode_variant(variant), **kwargs})
