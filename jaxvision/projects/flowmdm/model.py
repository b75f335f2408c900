"""The FlowMDM denoiser (Barquero et al., CVPR 2024, Sec. 3 and Fig. 3), as upstream.

x_t (B, T, F) -> Linear(F -> d) -> project_in Linear(d -> d) -> + (1 - w) * absolute
BPE (scaled [sin | cos] sinusoid, learnable scale initialised to d^-0.5, positions
restarting at 0 in every segment, 0 at padded frames as upstream's collate) -> dropout
-> L pre-LN blocks of [PCCAT self-attention, feed-forward x2 GELU], each sub-layer
skipped with probability `layer_dropout` while training (stochastic depth) -> final LN
-> project_out Linear(d -> d) -> Linear(d -> F): the prediction of x_0.

The condition of frame i is `emb_i = MLP(timestep table[t]) + embed_text(text_{s(i)})`
with s(i) the segment frame i belongs to (upstream's `conditions_mask`); a zeroed text
embedding is the null condition of classifier-free guidance.  BPE weight w per sample:
0 = absolute stage (APE added, segment-restricted attention, no rotation), 1 = relative
stage (RoPE on the first `rotary_dim` channels of q and k at global positions).  The
local band |i - j| <= H applies in both stages, as upstream; `banded_attention=True`
computes it block-wise (`jaxvision.nn.banded_attention`, upstream's Longformer-style
chunks), equal to the dense masked form and linear in T.

Parameter names follow upstream's modules (see `convert.py` for the exact mapping).
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxvision.nn import positional
from jaxvision.nn.layers import TorchLinear, layer_norm
from jaxvision.projects.flowmdm import layers


class FlowMDMDenoiser(nn.Module):
  """Predicts x_0 from x_t; see the module docstring."""
  input_dim: int
  latent_dim: int = 512
  num_layers: int = 8
  num_heads: int = 4
  head_dim: int = 64
  ff_size: int = 1024
  dropout: float = 0.1
  layer_dropout: float = 0.1
  layer_dropout_per_sample: bool = False   # upstream: one draw for the whole batch
  rpe_horizon: int = 200                   # band |i - j| <= H; < 0: none
  band_in_absolute_stage: bool = True      # upstream applies the band in both stages
  segment_bias: bool = True                # absolute stage attends within segments only
  rotary_dim: int = 0                      # 0: max(head_dim // 2, 32), as upstream
  banded_attention: bool = False           # the band block-wise: time/memory linear in T
  text_dim: int = 512
  timestep_table_size: int = 5000
  dtype: jnp.dtype = jnp.float32

  def _rotary_dim(self):
    return self.rotary_dim or max(self.head_dim // 2, 32)

  @nn.compact
  def __call__(self, x, timesteps, *, text_emb, segment_ids, mask, bpe_w, train: bool):
    """x (B, T, F); timesteps (B,) int; text_emb (B, S, text_dim); segment_ids (B, T)
    int indexing text_emb (frames of one segment are contiguous; padding is masked);
    mask (B, T) bool; bpe_w (B,) in {0, 1}.  Returns x_0 predictions (B, T, F)."""
    b, t, f = x.shape
    if f != self.input_dim:
      raise ValueError(f'motion has {f} channels, the model expects {self.input_dim}')
    if text_emb.ndim != 3 or text_emb.shape[0] != b or text_emb.shape[-1] != self.text_dim:
      raise ValueError(f'text_emb must be ({b}, segments, {self.text_dim}), got {text_emb.shape}')
    if segment_ids.shape != (b, t) or mask.shape != (b, t):
      raise ValueError(f'segment_ids {segment_ids.shape} and mask {mask.shape} must be ({b}, {t})')
    d = self.latent_dim
    mask = mask.astype(bool)
    w = jnp.asarray(bpe_w, jnp.float32).reshape(b)

    # ---- condition: timestep MLP + per-frame text embedding
    table = positional.sinusoid_interleaved(self.timestep_table_size, d)
    temb = jnp.asarray(table)[timesteps]
    temb = TorchLinear(d, kernel_axes=('embed', 'mlp'), name='time_embed_0')(temb)
    temb = TorchLinear(d, kernel_axes=('mlp', 'embed'),
                              name='time_embed_1')(jax.nn.silu(temb))
    text = TorchLinear(d, kernel_axes=('embed', 'mlp'), name='embed_text')(
        text_emb.astype(jnp.float32))
    seg = jnp.clip(segment_ids, 0, text.shape[1] - 1)
    frame_text = jnp.take_along_axis(text, seg[..., None], axis=1)
    frame_text = jnp.where(mask[..., None] & (segment_ids[..., None] >= 0), frame_text, 0.0)
    emb = temb[:, None, :] + frame_text

    # ---- input and the absolute stage of BPE
    h = TorchLinear(d, kernel_axes=('channels', 'embed'), name='input_process')(x)
    h = TorchLinear(d, kernel_axes=('embed', 'mlp'), name='project_in')(h)
    scale = self.param('ape_scale', nn.with_logical_partitioning(
        lambda k, s: jnp.full(s, d ** -0.5, jnp.float32), (None,)), (1,))
    ape = positional.sinusoid_concat(layers.ape_positions(segment_ids, mask), d) * scale
    h = h + (1.0 - w)[:, None, None] * ape
    h = nn.Dropout(self.dropout)(h, deterministic=not train)
    h = nn.with_logical_constraint(h, ('batch', None, None))

    # ---- masks and the relative stage of BPE
    if self.banded_attention:
      # The same band, key padding and segment restriction, evaluated block-wise.
      if self.rpe_horizon < 0 or not self.band_in_absolute_stage:
        raise ValueError('banded_attention needs rpe_horizon >= 0 and band_in_absolute_stage')
      seg = jnp.where((w > 0)[:, None], 0, segment_ids) if self.segment_bias else None
      attn_kw = dict(key_valid=mask, segment_ids=seg)
    else:
      allowed = layers.attention_allowed(mask, self.rpe_horizon)
      if not self.band_in_absolute_stage:
        no_band = layers.attention_allowed(mask, -1)
        allowed = jnp.where((w > 0)[:, None, None], allowed, no_band)
      bias = 0.0
      if self.segment_bias:
        bias = jnp.where((w > 0)[:, None, None], 0.0, layers.segment_bias(segment_ids))
      # Mask and segment bias folded once into one additive (B, 1, T, T) bias shared by
      # every head and layer: logits + float32's minimum rounds to that minimum, so this
      # equals `where(mask, logits + bias, min)` bit for bit.
      attn_kw = dict(bias=jnp.where(allowed, bias, jnp.finfo(jnp.float32).min)[:, None])
    positions = jnp.broadcast_to(jnp.arange(t), (b, t))
    freqs = w[:, None, None] * positional.rope_frequencies(positions, self._rotary_dim())

    # ---- blocks
    for i in range(self.num_layers):
      h = layers.pccat_block(i, num_heads=self.num_heads, head_dim=self.head_dim,
                             ff_size=self.ff_size, dtype=self.dtype,
                             window=self.rpe_horizon if self.banded_attention else None)(
          h, rope=freqs, query_context=emb, query_mask=mask, keep=self._keep(train, b),
          **attn_kw)
    h = layer_norm('final_norm', 1e-5)(h)
    h = TorchLinear(d, kernel_axes=('embed', 'mlp'), name='project_out')(h)
    return TorchLinear(f, kernel_axes=('embed', 'channels'), name='output_process')(h)

  def _keep(self, train, batch):
    """Stochastic-depth keep factors for one block's two sub-layers."""
    if not train or self.layer_dropout <= 0:
      return 1.0, 1.0
    shape = (batch, 1, 1) if self.layer_dropout_per_sample else ()
    rng = self.make_rng('dropout')
    keep = jax.random.bernoulli(rng, 1.0 - self.layer_dropout, (2,) + shape)
    return keep[0].astype(jnp.float32), keep[1].astype(jnp.float32)


class FlowMDM(nn.Module):
  """Text encoder (optional) + denoiser.  `text` is token ids or, without an encoder,
  the text embeddings themselves."""
  denoiser: FlowMDMDenoiser
  text_encoder: nn.Module | None = None

  def embed_texts(self, text):
    return text if self.text_encoder is None else self.text_encoder(text)

  def denoise(self, x, timesteps, *, text_emb, segment_ids, mask, bpe_w, train=False):
    return self.denoiser(x, timesteps, text_emb=text_emb, segment_ids=segment_ids, mask=mask,
                         bpe_w=bpe_w, train=train)

  def __call__(self, x, timesteps, *, text, segment_ids, mask, bpe_w, train: bool,
               drop_text=None):
    """`drop_text` (B, S) bool zeroes those texts' embeddings (classifier-free dropout)."""
    text_emb = self.embed_texts(text)
    if drop_text is not None:
      text_emb = jnp.where(drop_text[..., None], 0.0, text_emb)
    return self.denoise(x, timesteps, text_emb=text_emb, segment_ids=segment_ids, mask=mask,
                        bpe_w=bpe_w, train=train)
