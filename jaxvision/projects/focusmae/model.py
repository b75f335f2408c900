"""FocusMAE's video masked autoencoder (VideoMAE / AdaMAE backbone) in Flax.

Basu et al., "Gallbladder Cancer Detection from Ultrasound Videos with Focused Masked
Autoencoders", CVPR 2024, Sec. 3 (the MAE backbone FocusMAE pre-trains), which follows
VideoMAE (Tong et al., NeurIPS 2022, Sec. 3.3) and AdaMAE (Bandara et al., CVPR 2023):

* tube (tubelet) embedding: a Conv3d with kernel = stride = (2, 16, 16) turns a
  (T, H, W, 3) clip into N = T/2 * H/16 * W/16 tokens, ordered (t, h, w) row-major
  (16 x 224^2 -> 8 x 14 x 14 = 1568 tokens);
* fixed 1-D sinusoid position embeddings over the flattened token index
  (VideoMAE's `get_sinusoid_encoding_table`, = `positional.sinusoid_interleaved`);
* the encoder runs on the VISIBLE tokens only (pre-LN blocks, exact GELU, LN eps 1e-6,
  bias on the fused qkv), then a LayerNorm;
* `encoder_to_decoder` (Linear, no bias) maps to the decoder width; a learnt
  `mask_token` plus the decoder's position embedding stands in for each masked token;
  visible tokens come first, masked after, as in VideoMAE; a lightweight decoder
  (width 384, 6 heads, depth 4 in VideoMAE / 10 in FocusMAE's pretrain.sh) and a Linear
  head predict the 2*16*16*3 = 1536 pixels of every MASKED tube.

`mask` is (B, N) bool with True = masked and the same number of visible tokens in every
row (`num_visible`, static); `jaxvision.projects.focusmae.masking` draws it. Tokens are
gathered with a stable argsort of the mask, so visible and masked tokens keep their
ascending index order and the predictions are for `masked_index(mask)` in that order.
Sub-module names (patch_embed/proj, blocks_i/{norm1,attn/qkv,attn/proj,norm2,mlp/fc1,
mlp/fc2}, norm, encoder_to_decoder, mask_token, decoder/head) follow the PyTorch
state-dict keys so a converter can map a VideoMAE/AdaMAE checkpoint one-to-one
(VideoMAE's separate q_bias/v_bias map to the fused bias with a zero key bias).
"""

from __future__ import annotations

from typing import Any, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxvision.nn import layers
from jaxvision.nn import positional
from jaxvision.nn import transformer
from jaxvision.nn.layers import boxed
from jaxvision.projects.focusmae import masking

_xavier = nn.initializers.xavier_uniform()
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def token_grid(frames: int, height: int, width: int,
               tubelet: int = 2, patch: int = 16) -> tuple[int, int, int]:
  """(T', H', W') token grid of a clip; refuses sizes the tubes do not tile."""
  if frames % tubelet or height % patch or width % patch:
    raise ValueError(f'clip {frames} x {height} x {width} is not tiled by tubes of '
                     f'{tubelet} x {patch} x {patch}')
  return frames // tubelet, height // patch, width // patch


def sinusoid_table(num_tokens: int, dim: int) -> jax.Array:
  """(1, N, dim) fixed position embedding (VideoMAE's table: sin even / cos odd)."""
  return jnp.asarray(positional.sinusoid_interleaved(num_tokens, dim))[None]


def split_index(mask: jax.Array, num_visible: int) -> tuple[jax.Array, jax.Array]:
  """(visible (B, num_visible), masked (B, N - num_visible)) token indices, ascending."""
  order = jnp.argsort(mask.astype(jnp.int32), axis=-1, stable=True)
  return order[:, :num_visible], order[:, num_visible:]


def masked_index(mask: jax.Array, num_visible: int) -> jax.Array:
  return split_index(mask, num_visible)[1]


def gather_tokens(x: jax.Array, index: jax.Array) -> jax.Array:
  """x (B, N, D), index (B, K) -> (B, K, D)."""
  return jnp.take_along_axis(x, index[..., None], axis=1)


def block(num_heads: int, mlp_ratio: float, width: int, name: str,
          dtype_mm: Any = jnp.float32) -> transformer.TransformerBlock:
  """VideoMAE's Block: pre-LN (eps 1e-6), fused qkv with bias, exact-GELU MLP."""
  return transformer.TransformerBlock(
      num_heads, mlp_dim=int(width * mlp_ratio), activation='gelu', norm='pre', ln_eps=1e-6,
      fused_qkv=True, names={'attn_norm': 'norm1', 'attn': 'attn', 'mlp_norm': 'norm2',
                             'mlp': 'mlp'},
      attn_names=('qkv', 'qkv', 'qkv', 'proj'), mlp_names=('fc1', 'fc2'),
      attn_kernel_init=_xavier, mlp_kernel_init=_xavier, dtype_mm=dtype_mm, name=name)


class TubeEmbed(nn.Module):
  """Conv3d over (2, 16, 16) tubes: (B, T, H, W, C) -> (B, N, width), (t, h, w) order."""
  width: int
  tubelet: int = 2
  patch: int = 16
  dtype_mm: Any = jnp.float32

  @nn.compact
  def __call__(self, video):
    kernel = (self.tubelet, self.patch, self.patch)
    x = nn.Conv(self.width, kernel, strides=kernel, padding='VALID', dtype=self.dtype_mm,
                kernel_init=boxed(nn.initializers.lecun_normal(), None, 'patch', None,
                                  'channels', 'embed'),
                bias_init=boxed(nn.initializers.zeros, 'embed'), name='proj')(video)
    b = x.shape[0]
    return jnp.reshape(x, (b, -1, self.width)).astype(jnp.float32)


class Encoder(nn.Module):
  """Tube embedding + position embedding (`embed`); blocks on the visible tokens; LayerNorm."""
  width: int = 384
  depth: int = 12
  num_heads: int = 6
  mlp_ratio: float = 4.0
  tubelet: int = 2
  patch: int = 16
  final_norm: bool = True      # False: fine-tuning with mean pooling (fc_norm instead)
  drop_path: float = 0.0       # stochastic depth, linear in depth (timm), train only
  dtype_mm: Any = jnp.float32

  def setup(self):
    self.patch_embed = TubeEmbed(self.width, self.tubelet, self.patch, self.dtype_mm)
    self.blocks = [block(self.num_heads, self.mlp_ratio, self.width, f'blocks_{i}',
                         self.dtype_mm) for i in range(self.depth)]
    if self.final_norm:
      self.norm = layers.layer_norm(None, 1e-6)

  def _keep(self, rate: float, batch: int, train: bool):
    """Per-sample stochastic-depth factor (B, 1, 1): Bernoulli(1 - rate) / (1 - rate)."""
    if not train or rate <= 0:
      return None
    keep = jax.random.bernoulli(self.make_rng('dropout'), 1 - rate, (batch, 1, 1))
    return keep.astype(jnp.float32) / (1 - rate)

  def embed(self, video):
    """(B, N, width): every tube's embedding plus its position embedding."""
    x = self.patch_embed(video)
    return x + sinusoid_table(x.shape[1], self.width)

  def __call__(self, video, visible, *, train: bool = False):
    x = self.embed(video)
    if visible is not None:
      x = gather_tokens(x, visible)
    rates = np.linspace(0, self.drop_path, self.depth) if self.depth else []
    for blk, rate in zip(self.blocks, rates):
      keep = (self._keep(float(rate), x.shape[0], train), self._keep(float(rate), x.shape[0],
                                                                      train))
      x = blk(x, keep=keep, train=train)
    return self.norm(x) if self.final_norm else x


class TokenProbability(nn.Module):
  """AdaMAE's `get_token_probs`: one Transformer block, then Linear(width, 1) -> (B, N)."""
  num_heads: int = 8
  mlp_ratio: float = 4.0
  dropout: float = 0.1
  dtype_mm: Any = jnp.float32

  @nn.compact
  def __call__(self, x, *, train: bool = False):
    width = x.shape[-1]
    x = transformer.TransformerBlock(
        self.num_heads, mlp_dim=int(width * self.mlp_ratio), activation='gelu', norm='pre',
        ln_eps=1e-6, dropout=self.dropout, fused_qkv=True,
        names={'attn_norm': 'norm1', 'attn': 'attn', 'mlp_norm': 'norm2', 'mlp': 'mlp'},
        attn_names=('qkv', 'qkv', 'qkv', 'proj'), mlp_names=('fc1', 'fc2'),
        attn_kernel_init=_xavier, mlp_kernel_init=_xavier, dtype_mm=self.dtype_mm,
        name='block')(x, train=train)
    logits = layers.Dense(1, kernel_axes=('embed', None), kernel_init=_xavier,
                          dtype_mm=self.dtype_mm, name='head')(x)
    return logits[..., 0].astype(jnp.float32)


class Decoder(nn.Module):
  """Blocks over [visible; mask tokens], LayerNorm, Linear head on the masked part."""
  width: int = 384
  depth: int = 4
  num_heads: int = 6
  mlp_ratio: float = 4.0
  out_dim: int = 1536
  dtype_mm: Any = jnp.float32

  @nn.compact
  def __call__(self, x, num_masked: int, *, train: bool = False):
    for i in range(self.depth):
      x = block(self.num_heads, self.mlp_ratio, self.width, f'blocks_{i}',
                self.dtype_mm)(x, train=train)
    x = layers.layer_norm('norm', 1e-6)(x[:, -num_masked:])
    return layers.Dense(self.out_dim, kernel_axes=('embed', 'mlp'), kernel_init=_xavier,
                        dtype_mm=self.dtype_mm, name='head')(x)


class VideoMAE(nn.Module):
  """`__call__(video (B, T, H, W, 3) normalised, mask (B, N) bool) -> (B, N_masked, 1536)`.

  The predictions are for `masked_index(mask, num_visible)` tokens in ascending order.
  """
  frames: int = 16
  image_size: Sequence[int] = (224, 224)
  tubelet: int = 2
  patch: int = 16
  # Defaults: FocusMAE's paper-era model (root pretrain.sh): 384-wide encoder with 12
  # heads (FocusMAE_v1: 768), decoder 384 / 6 heads / depth 10, mask ratio 0.8.
  mask_ratio: float = 0.8
  mask_type: str = 'focus'     # sets num_visible: masking.num_visible(mask_type, ...)
  encoder_width: int = 384
  encoder_depth: int = 12
  encoder_heads: int = 12
  decoder_width: int = 384
  decoder_depth: int = 10
  decoder_heads: int = 6
  mlp_ratio: float = 4.0
  channels: int = 3
  adaptive: bool = False       # AdaMAE token-probability network (`token_logits`)
  sampler_heads: int = 8
  dtype_mm: Any = jnp.float32

  @property
  def grid(self) -> tuple[int, int, int]:
    return token_grid(self.frames, *self.image_size, self.tubelet, self.patch)

  @property
  def num_tokens(self) -> int:
    return int(np.prod(self.grid))

  @property
  def num_visible(self) -> int:
    """Visible tokens per clip: int(N (1 - mask_ratio)) for random / focus masking."""
    return masking.num_visible(self.mask_type, self.grid, self.mask_ratio)

  def setup(self):
    self.encoder = Encoder(self.encoder_width, self.encoder_depth, self.encoder_heads,
                           self.mlp_ratio, self.tubelet, self.patch, self.dtype_mm)
    self.encoder_to_decoder = layers.Dense(self.decoder_width, use_bias=False,
                                           kernel_axes=('embed', 'mlp'), kernel_init=_xavier,
                                           dtype_mm=self.dtype_mm)
    self.mask_token = self.param('mask_token', boxed(nn.initializers.truncated_normal(0.02),
                                                     None, None, 'mlp'),
                                 (1, 1, self.decoder_width), jnp.float32)
    self.decoder = Decoder(self.decoder_width, self.decoder_depth, self.decoder_heads,
                           self.mlp_ratio, self.tubelet * self.patch ** 2 * self.channels,
                           self.dtype_mm)
    if self.adaptive:
      self.get_token_probs = TokenProbability(self.sampler_heads, self.mlp_ratio,
                                              dtype_mm=self.dtype_mm)

  def _check(self, video):
    if video.shape[1:] != (self.frames, *self.image_size, self.channels):
      raise ValueError(f'clip shape {video.shape[1:]} != configured '
                       f'{(self.frames, *self.image_size, self.channels)}')

  def token_logits(self, video, *, train: bool = False):
    """(B, N) AdaMAE sampling logits of every token (`adaptive=True` only)."""
    if not self.adaptive:
      raise ValueError('token_logits needs VideoMAE(adaptive=True)')
    self._check(video)
    x = self.encoder.embed(video)
    return self.get_token_probs(x + sinusoid_table(x.shape[1], x.shape[-1]), train=train)

  def __call__(self, video, mask, *, train: bool = False):
    self._check(video)
    if mask.shape[1:] != (self.num_tokens,):
      raise ValueError(f'mask has shape {mask.shape}, expected (B, {self.num_tokens})')
    if self.adaptive and self.is_initializing():
      self.token_logits(video)          # creates the sampler's parameters
    visible, masked = split_index(mask, self.num_visible)
    x_vis = self.encoder_to_decoder(self.encoder(video, visible, train=train))
    pos = jnp.broadcast_to(sinusoid_table(self.num_tokens, self.decoder_width),
                           (video.shape[0], self.num_tokens, self.decoder_width))
    x = jnp.concatenate([x_vis + gather_tokens(pos, visible),
                         self.mask_token + gather_tokens(pos, masked)], axis=1)
    return self.decoder(x, masked.shape[1], train=train)


class VideoClassifier(nn.Module):
  """Fine-tuning model: encoder on all tokens, mean pooling, `fc_norm`, linear `head`.

  VideoMAE's `vit_base_patch16_224` as FocusMAE fine-tunes it (upstream
  `models/modeling_finetune.py`): no final encoder norm, mean over tokens, LayerNorm
  (eps 1e-6), head initialised at `init_scale` (0.001) times trunc-normal(0.02), zero
  bias; drop_path 0.1. The `encoder` sub-tree has the pre-training encoder's names, so
  `config.init.from_workdir` with restore 'params/encoder/(patch_embed|blocks_.*)/.*'
  starts it from a pre-training run. `__call__(video, *, train) -> (B, num_classes)`.
  """
  num_classes: int = 2
  width: int = 384
  depth: int = 12
  num_heads: int = 12
  mlp_ratio: float = 4.0
  tubelet: int = 2
  patch: int = 16
  drop_path: float = 0.1
  init_scale: float = 0.001
  dtype_mm: Any = jnp.float32

  @nn.compact
  def __call__(self, video, *, train: bool = False):
    x = Encoder(self.width, self.depth, self.num_heads, self.mlp_ratio, self.tubelet,
                self.patch, final_norm=False, drop_path=self.drop_path,
                dtype_mm=self.dtype_mm, name='encoder')(video, None, train=train)
    x = layers.layer_norm('fc_norm', 1e-6)(jnp.mean(x, axis=1))
    scale = self.init_scale
    init = lambda key, shape, dtype=jnp.float32: scale * nn.initializers.truncated_normal(  # pylint: disable=g-long-lambda
        0.02)(key, shape, dtype)
    return layers.Dense(self.num_classes, kernel_axes=('embed', 'classes'), kernel_init=init,
                        dtype_mm=self.dtype_mm, name='head')(x)


def normalize_video(video: jax.Array) -> jax.Array:
  """[0, 1] RGB frames -> ImageNet-normalised model input (VideoMAE's GroupNormalize)."""
  return (video - jnp.asarray(IMAGENET_MEAN)) / jnp.asarray(IMAGENET_STD)
