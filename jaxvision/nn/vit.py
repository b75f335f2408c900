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
* no `scan`/remat option (the checkpoint loader converts scanned checkpoints).
"""

from __future__ import annotations

import functools
import math
from typing import Any, Optional, Sequence, Union

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

# Logical names of the token stream (batch, tokens, width).
TOKENS = ('batch', 'seq', 'embed')

_xavier = nn.initializers.xavier_uniform()
_lecun = nn.initializers.lecun_normal()
_zeros = nn.initializers.zeros
_ones = nn.initializers.ones


def _boxed(init, *names):
  return nn.with_logical_partitioning(init, names)


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


class MlpBlock(nn.Module):
  """Transformer feed-forward block: Dense -> GELU -> dropout -> Dense."""
  mlp_dim: Optional[int] = None  # Defaults to 4x the input width.
  dropout: float = 0.0
  dtype_mm: Any = 'float32'

  @nn.compact
  def __call__(self, x, *, train: bool = False):
    width = x.shape[-1]
    hidden = self.mlp_dim or 4 * width
    bias_init = nn.initializers.normal(stddev=1e-6)
    x = nn.Dense(hidden, dtype=self.dtype_mm, name='Dense_0',
                 kernel_init=_boxed(_xavier, 'embed', 'mlp'),
                 bias_init=_boxed(bias_init, 'mlp'))(x)
    x = nn.gelu(x)  # tanh approximation, as flax's default and big_vision.
    x = nn.Dropout(rate=self.dropout)(x, deterministic=not train)
    return nn.Dense(width, dtype=self.dtype_mm, name='Dense_1',
                    kernel_init=_boxed(_xavier, 'mlp', 'embed'),
                    bias_init=_boxed(bias_init, 'embed'))(x)


def _matrix_init(init, n_in):
  """`init` drawn for the (prod(shape[:n_in]), prod(shape[n_in:])) matrix, reshaped.

  flax's DenseGeneral initialises its kernels this way, so fan-in/fan-out of the
  attention kernels match big_vision's.
  """
  def init_fn(key, shape, dtype=jnp.float32):
    flat = (math.prod(shape[:n_in]), math.prod(shape[n_in:]))
    return jnp.reshape(init(key, flat, dtype), shape)
  return init_fn


class _DenseGeneral(nn.Module):
  """Contracts the last `in_dims` input dims with a (*in, *features) kernel.

  Unlike nn.DenseGeneral, parameters are created at their final shape: its reshape of
  a boxed init applies the logical constraint to the flat array under a mesh, which
  fails for kernels with more than two dims.
  """
  features: tuple[int, ...]
  in_dims: int
  kernel_names: tuple[Optional[str], ...]
  bias_names: tuple[Optional[str], ...]
  dtype_mm: Any = 'float32'

  @nn.compact
  def __call__(self, x):
    shape = (*x.shape[x.ndim - self.in_dims:], *self.features)
    kernel = self.param('kernel', _boxed(_matrix_init(_xavier, self.in_dims), *self.kernel_names),
                        shape, jnp.float32)
    bias = self.param('bias', _boxed(_zeros, *self.bias_names), self.features, jnp.float32)
    dtype = jnp.dtype(self.dtype_mm)
    y = jnp.tensordot(x.astype(dtype), kernel.astype(dtype), axes=self.in_dims)
    return y + bias.astype(dtype)


class MultiHeadDotProductAttention(nn.Module):
  """Multi-head attention with the parameters of flax's module of the same name.

  query/key/value kernels are (width, heads, head_dim) with (heads, head_dim) biases;
  the output kernel is (heads, head_dim, width). Written out here so that every
  parameter is annotated and the softmax runs in float32 whatever `dtype_mm` is.
  """
  num_heads: int
  dtype_mm: Any = 'float32'

  @nn.compact
  def __call__(self, inputs_q, inputs_kv):
    width = inputs_q.shape[-1]
    if width % self.num_heads:
      raise ValueError(f'width {width} is not divisible by num_heads {self.num_heads}')
    head_dim = width // self.num_heads
    proj = functools.partial(
        _DenseGeneral, (self.num_heads, head_dim), 1, ('embed', 'heads', 'kv'),
        ('heads', 'kv'), self.dtype_mm)
    heads = ('batch', 'seq', 'heads', 'kv')
    q = nn.with_logical_constraint(proj(name='query')(inputs_q), heads)
    k = nn.with_logical_constraint(proj(name='key')(inputs_kv), heads)
    v = nn.with_logical_constraint(proj(name='value')(inputs_kv), heads)

    q = q / jnp.sqrt(head_dim).astype(q.dtype)
    logits = jnp.einsum('...qhd,...khd->...hqk', q, k)
    weights = jax.nn.softmax(logits.astype(jnp.float32), axis=-1).astype(v.dtype)
    y = jnp.einsum('...hqk,...khd->...qhd', weights, v)
    y = nn.with_logical_constraint(y, heads)
    return _DenseGeneral((width,), 2, ('heads', 'kv', 'embed'), ('embed',), self.dtype_mm,
                         name='out')(y)


def _layer_norm(name):
  return nn.LayerNorm(epsilon=1e-6, name=name,
                      scale_init=_boxed(_ones, 'norm'), bias_init=_boxed(_zeros, 'norm'))


class Encoder1DBlock(nn.Module):
  """Pre-LN encoder block: x + MHSA(LN(x)), then x + MLP(LN(x)) (ViT Eqs. 2-3)."""
  mlp_dim: Optional[int] = None
  num_heads: int = 12
  dropout: float = 0.0
  dtype_mm: Any = 'float32'

  @nn.compact
  def __call__(self, x, *, train: bool = False):
    x = nn.with_logical_constraint(x, TOKENS)
    y = _layer_norm('LayerNorm_0')(x)
    y = MultiHeadDotProductAttention(self.num_heads, dtype_mm=self.dtype_mm,
                                     name='MultiHeadDotProductAttention_0')(y, y)
    y = nn.Dropout(rate=self.dropout)(y, deterministic=not train)
    x = nn.with_logical_constraint(x + y, TOKENS)

    y = _layer_norm('LayerNorm_1')(x)
    y = MlpBlock(self.mlp_dim, self.dropout, self.dtype_mm, name='MlpBlock_0')(y, train=train)
    y = nn.Dropout(rate=self.dropout)(y, deterministic=not train)
    return nn.with_logical_constraint(x + y, TOKENS)


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
      x = Encoder1DBlock(self.mlp_dim, self.num_heads, self.dropout, self.dtype_mm,
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
    probe = self.param('probe', _boxed(_xavier, None, None, 'embed'), (1, 1, d), jnp.float32)
    probe = jnp.tile(probe, [n, 1, 1])
    x = MultiHeadDotProductAttention(self.num_heads, dtype_mm=self.dtype_mm,
                                     name='MultiHeadDotProductAttention_0')(probe, x)
    x = x.astype(jnp.float32)
    y = _layer_norm('LayerNorm_0')(x)
    x = x + MlpBlock(self.mlp_dim, self.dropout, self.dtype_mm, name='MlpBlock_0')(y, train=train)
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
        kernel_init=_boxed(_lecun, 'patch', None, 'channels', 'embed'),
        bias_init=_boxed(_zeros, 'embed'), name='embedding')(image)
    n, h, w, c = x.shape
    x = jnp.reshape(x, [n, h * w, c]).astype(jnp.float32)

    # The position embedding is added before the class token is prepended.
    if self.posemb == 'learn':
      pe = self.param('pos_embedding',
                      _boxed(nn.initializers.normal(stddev=1 / np.sqrt(c)), None, 'seq', 'embed'),
                      (1, h * w, c), jnp.float32)
    elif self.posemb == 'sincos2d':
      pe = jnp.asarray(posemb_sincos_2d(h, w, c))
    else:
      raise ValueError(f'unknown posemb type {self.posemb!r}')
    x = out['with_posemb'] = x + pe

    if self.pool_type == 'tok':
      cls = self.param('cls', _boxed(_zeros, None, None, 'embed'), (1, 1, c), jnp.float32)
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
                     kernel_init=_boxed(_lecun, 'embed', None), bias_init=_boxed(_zeros, None))
      x_2d = nn.tanh(hid(x_2d))
      x = nn.tanh(hid(x))
    out['pre_logits_2d'] = x_2d
    out['pre_logits'] = x

    if self.num_classes:
      kernel_init = _zeros if self.head_zeroinit else _lecun
      head = nn.Dense(self.num_classes, dtype=self.dtype_mm, name='head',
                      kernel_init=_boxed(kernel_init, 'embed', 'classes'),
                      bias_init=_boxed(_zeros, 'classes'))
      x_2d = out['logits_2d'] = head(x_2d)
      x = out['logits'] = head(x)
    return x, out


def make_vit(variant: Optional[str] = None, **kwargs) -> ViT:
  """ViT from a variant string ('Ti/16', 'B/32', ...); kwargs override its fields."""
  return ViT(**{**decode_variant(variant), **kwargs})
