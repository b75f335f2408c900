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
import jax.numpy as jnp
import numpy as np

from jaxvision.nn import transformer
from jaxvision.nn.layers import TorchLinear, layer_norm

_WORD = re.compile(r"[a-z0-9]+")


def hash_tokenize(text: str, max_tokens: int, vocab_size: int) -> np.ndarray:
  """(max_tokens,) int32 word ids in [1, vocab_size), 0-padded (truncated if longer)."""
  words = _WORD.findall(text.lower())[:max_tokens]
  ids = [zlib.crc32(w.encode()) % (vocab_size - 1) + 1 for w in words]
  out = np.zeros(max_tokens, np.int32)
  out[:len(ids)] = ids
  return out


class SmallTextEncoder(nn.Module):
  """Token ids (..., L) -> embeddings (..., out_dim): embed + pre-LN encoder + mean pool.

  Blocks are `jaxvision.nn.transformer`'s (fused qkv, PyTorch init, exact GELU).
  """
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
      h = transformer.TransformerBlock(
          self.num_heads, activation='gelu', ln_eps=1e-5, fused_qkv=True,
          names={'attn_norm': f'block_{i}_norm_1', 'attn': f'block_{i}_attn',
                 'mlp_norm': f'block_{i}_norm_2', 'mlp': f'block_{i}_ff'},
          attn_names=('qkv', None, None, 'out'), mlp_names=('wi', 'wo'), torch_init=True,
          tokens_axes=None, share_scope=True, name=f'block_{i}')(h, mask=allowed[:, None])
    h = layer_norm('final_norm', 1e-5)(h)
    weights = valid.astype(h.dtype)[..., None]
    pooled = jnp.sum(h * weights, axis=1) / jnp.maximum(jnp.sum(weights, axis=1), 1.0)
    out = TorchLinear(self.out_dim, kernel_axes=('embed', 'mlp'), name='projection')(pooled)
    return out.reshape(lead + (self.out_dim,))


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
