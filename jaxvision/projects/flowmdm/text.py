"""Text conditions for FlowMDM: a small encoder trained from scratch, or fixed embeddings.

FlowMDM encodes each text with frozen CLIP ViT-B/32 (`jaxvision.nn.clip_text`), and its
training loaders read the CLIP embeddings precomputed once per caption.  Here:

- `type='precomputed'`: an `.npz` with `texts` (N,) and `embeddings` (N, E)
  (`jaxvision.nn.clip_text.save_text_embeddings`), made once with the CLIP tower;
  batches carry `text_emb` (B, S, E).
- `type='small'`: a small Transformer over hashed words, trained jointly with the
  denoiser (for the embedded dataset, where no pretrained text model is at hand);
  batches carry `text_tokens` (B, S, L).  Words are lower-cased and hashed (CRC32) into
  `vocab_size - 1` buckets, 0 being padding, so no vocabulary file is needed.
- `type='clip'`: the CLIP text tower inside the model (`ClipTextCondition`), frozen by
  the optimizer's `lr_rules`; batches carry CLIP token ids (B, S, 77) from
  `jaxvision.nn.clip_tokenizer` (with MDM's HumanML3D hack: 20 words, zero-padded).
"""

from __future__ import annotations

import re
import zlib

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxvision.projects.flowmdm import layers

_WORD = re.compile(r"[a-z0-9]+")


def hash_tokenize(text: str, max_tokens: int, vocab_size: int) -> np.ndarray:
  """(max_tokens,) int32 word ids in [1, vocab_size), 0-padded (truncated if longer)."""
  words = _WORD.findall(text.lower())[:max_tokens]
  ids = [zlib.crc32(w.encode()) % (vocab_size - 1) + 1 for w in words]
  out = np.zeros(max_tokens, np.int32)
  out[:len(ids)] = ids
  return out


class SmallTextEncoder(nn.Module):
  """Token ids (..., L) -> embeddings (..., out_dim): embed + pre-LN encoder + mean pool."""
  vocab_size: int = 1024
  max_tokens: int = 16
  width: int = 128
  depth: int = 2
  num_heads: int = 4
  out_dim: int = 512

  @nn.compact
  def __call__(self, tokens):
    lead = tokens.shape[:-1]
    tokens = tokens.reshape((-1, tokens.shape[-1]))
    if tokens.shape[-1] > self.max_tokens:
      raise ValueError(f'{tokens.shape[-1]} tokens exceed max_tokens={self.max_tokens}')
    valid = tokens > 0
    emb = nn.Embed(self.vocab_size, self.width, name='token_embedding',
                   embedding_init=nn.with_logical_partitioning(
                       nn.initializers.normal(0.02), ('vocab', 'embed')))(tokens)
    pos = self.param('positional_embedding', nn.with_logical_partitioning(
        nn.initializers.normal(0.01), (None, 'embed')), (self.max_tokens, self.width))
    h = emb + pos[:tokens.shape[-1]]
    allowed = valid[:, None, :] & valid[:, :, None]
    allowed = allowed | jnp.eye(tokens.shape[-1], dtype=bool)[None]   # empty texts stay finite
    for i in range(self.depth):
      y = layers.layer_norm(f'block_{i}_norm_1')(h)
      h = h + _SelfAttention(self.num_heads, name=f'block_{i}_attn')(y, allowed)
      y = layers.layer_norm(f'block_{i}_norm_2')(h)
      h = h + layers.FeedForward(4 * self.width, name=f'block_{i}_ff')(y)
    h = layers.layer_norm('final_norm')(h)
    weights = valid.astype(h.dtype)[..., None]
    pooled = jnp.sum(h * weights, axis=1) / jnp.maximum(jnp.sum(weights, axis=1), 1.0)
    out = layers.TorchLinear(self.out_dim, kernel_axes=('embed', 'mlp'), name='projection')(pooled)
    return out.reshape(lead + (self.out_dim,))


class _SelfAttention(nn.Module):
  num_heads: int

  @nn.compact
  def __call__(self, x, allowed):
    b, t, d = x.shape
    dh = d // self.num_heads
    qkv = layers.TorchLinear(3 * d, kernel_axes=('embed', 'heads'), name='qkv')(x)
    q, k, v = jnp.split(qkv.reshape(b, t, 3, self.num_heads, dh), 3, axis=2)
    logits = jnp.einsum('bqhd,bkhd->bhqk', q[:, :, 0], k[:, :, 0]) * dh ** -0.5
    logits = jnp.where(allowed[:, None], logits, jnp.finfo(logits.dtype).min)
    out = jnp.einsum('bhqk,bkhd->bqhd', jax.nn.softmax(logits, axis=-1), v[:, :, 0])
    return layers.TorchLinear(d, kernel_axes=('heads', 'embed'), name='out')(out.reshape(b, t, d))


class ClipTextCondition(nn.Module):
  """CLIP's text tower on (..., L) token ids -> (..., embed_dim), frozen by `lr_rules`."""
  variant: str = 'ViT-B/32'

  @nn.compact
  def __call__(self, tokens):
    from jaxvision.nn import clip_text  # pylint: disable=g-import-not-at-top
    lead = tokens.shape[:-1]
    emb, _ = clip_text.clip_text_encoder(self.variant, name='clip')(
        tokens.reshape((-1, tokens.shape[-1])))
    return emb.reshape(lead + (emb.shape[-1],))
