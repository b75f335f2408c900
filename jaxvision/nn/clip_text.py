"""CLIP's text tower (Radford et al., "Learning Transferable Visual Models From Natural
Language Supervision", ICML 2021, Sec. 2.4) and precomputed text embeddings.

The text encoder is a GPT-2-style Transformer over BPE tokens (`clip_tokenizer`):
x = token_embedding[tokens] + positional_embedding; `depth` residual blocks
x += MHSA(LN_1(x)) with a causal mask, x += MLP(LN_2(x)) with QuickGELU
(u * sigmoid(1.702 u)); then LN_final, and the feature of the [EOT] token (the largest
token id of each row, `argmax`) times `text_projection` is the text embedding.
Defaults are ViT-B/32's text config (vocab 49408, context 77, width 512, 12 layers,
8 heads, embedding 512); `__call__(tokens)` accepts any length <= context_length
(OpenAI's code requires exactly context_length).

Parameters follow OpenAI's `clip/model.py` names (`token_embedding`,
`positional_embedding`, `resblocks_{i}/{ln_1, attn, ln_2, mlp/{c_fc, c_proj}}`,
`ln_final`, `text_projection`); attention kernels are split per head as flax's
(`query`/`key`/`value`: (width, heads, head_dim); `out`: (heads, head_dim, width)), and
every parameter carries logical axis names. `clip_checkpoint` loads OpenAI's PyTorch
weights into this tree. LayerNorm eps is PyTorch's 1e-5.

Precomputed embeddings: a frozen CLIP only maps each distinct text to a vector, so a
project can embed its texts once (`embed_texts`, e.g. on a GPU with the real weights)
and train from a lookup table (`TextEmbeddings`). The file is an `.npz` with
`texts` (N,) unicode strings and `embeddings` (N, D) float32 (`save_text_embeddings`);
`load_text_embeddings` also reads an `.npz` whose keys are the texts themselves and
whose values are (D,) vectors.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any, Callable, Iterable, Mapping, Optional, Sequence, Union

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxvision.data import errors

TOKENS = ('batch', 'seq', 'embed')
LN_EPS = 1e-5  # PyTorch's nn.LayerNorm default, used by CLIP.


def _boxed(init, *names):
  return nn.with_logical_partitioning(init, names)


def quick_gelu(x):
  """CLIP's GELU approximation: x * sigmoid(1.702 x)."""
  return x * jax.nn.sigmoid(1.702 * x)


def _layer_norm(name):
  return nn.LayerNorm(epsilon=LN_EPS, name=name,
                      scale_init=_boxed(nn.initializers.ones, 'norm'),
                      bias_init=_boxed(nn.initializers.zeros, 'norm'))


class CausalSelfAttention(nn.Module):
  """Multi-head self-attention, token i attending to tokens j <= i."""
  num_heads: int
  dtype_mm: Any = 'float32'

  @nn.compact
  def __call__(self, x):
    width = x.shape[-1]
    if width % self.num_heads:
      raise ValueError(f'width {width} is not divisible by num_heads {self.num_heads}')
    hd = width // self.num_heads
    dtype = jnp.dtype(self.dtype_mm)
    # OpenAI's in_proj init (std width^-0.5), also used for the output projection
    # (OpenAI scales that one by (2 depth)^-0.5 more); only matters when training anew.
    init = nn.initializers.normal(stddev=width ** -0.5)

    def proj(name):
      k = self.param(f'{name}_kernel', _boxed(init, 'embed', 'heads', 'kv'),
                     (width, self.num_heads, hd), jnp.float32)
      b = self.param(f'{name}_bias', _boxed(nn.initializers.zeros, 'heads', 'kv'),
                     (self.num_heads, hd), jnp.float32)
      y = jnp.einsum('...d,dhk->...hk', x.astype(dtype), k.astype(dtype)) + b.astype(dtype)
      return nn.with_logical_constraint(y, ('batch', 'seq', 'heads', 'kv'))

    q, k, v = proj('query'), proj('key'), proj('value')
    logits = jnp.einsum('...qhd,...khd->...hqk', q, k).astype(jnp.float32) / np.sqrt(hd)
    length = x.shape[-2]
    causal = np.tril(np.ones((length, length), dtype=bool))
    logits = jnp.where(causal, logits, jnp.finfo(jnp.float32).min)
    weights = jax.nn.softmax(logits, axis=-1).astype(dtype)
    y = jnp.einsum('...hqk,...khd->...qhd', weights, v)
    out_k = self.param('out_kernel', _boxed(init, 'heads', 'kv', 'embed'),
                       (self.num_heads, hd, width), jnp.float32)
    out_b = self.param('out_bias', _boxed(nn.initializers.zeros, 'embed'), (width,), jnp.float32)
    return jnp.einsum('...hk,hkd->...d', y, out_k.astype(dtype)) + out_b.astype(dtype)


class ResidualAttentionBlock(nn.Module):
  """x + attn(ln_1(x)), then x + mlp(ln_2(x)) with a 4x QuickGELU MLP."""
  num_heads: int
  dtype_mm: Any = 'float32'

  @nn.compact
  def __call__(self, x):
    width = x.shape[-1]
    x = nn.with_logical_constraint(x, TOKENS)
    y = CausalSelfAttention(self.num_heads, self.dtype_mm, name='attn')(_layer_norm('ln_1')(x))
    x = nn.with_logical_constraint(x + y.astype(jnp.float32), TOKENS)
    y = _layer_norm('ln_2')(x)
    dense = lambda n, names, name: nn.Dense(  # pylint: disable=g-long-lambda
        n, dtype=self.dtype_mm, name=name,
        kernel_init=_boxed(nn.initializers.normal(stddev=(2 * width) ** -0.5), *names),
        bias_init=_boxed(nn.initializers.zeros, names[1]))
    y = dense(4 * width, ('embed', 'mlp'), 'c_fc')(y)
    y = dense(width, ('mlp', 'embed'), 'c_proj')(quick_gelu(y))
    return nn.with_logical_constraint(x + y.astype(jnp.float32), TOKENS)


class CLIPTextEncoder(nn.Module):
  """CLIP text tower: `__call__(tokens) -> (embedding (B, embed_dim), out)`.

  tokens: (B, L) int token ids, L <= context_length, each row holding its [EOT] as the
  largest id (as `clip_tokenizer.BPETokenizer.tokenize` makes them). `out` holds
  'encoded' (B, L, width) after ln_final and 'pooled' (B, width), the [EOT] features.
  `train` is accepted for the model contract; CLIP has no dropout.
  """
  vocab_size: int = 49408
  context_length: int = 77
  width: int = 512
  depth: int = 12
  num_heads: int = 8
  embed_dim: int = 512
  dtype_mm: Any = 'float32'

  @nn.compact
  def __call__(self, tokens, *, train: bool = False):
    del train
    tokens = jnp.asarray(tokens)
    if tokens.ndim != 2 or not jnp.issubdtype(tokens.dtype, jnp.integer):
      raise ValueError(f'tokens must be (batch, length) integers, got {tokens.shape} {tokens.dtype}')
    length = tokens.shape[1]
    if not isinstance(tokens, jax.core.Tracer) and tokens.size and (
        int(tokens.min()) < 0 or int(tokens.max()) >= self.vocab_size):
      raise ValueError(f'token ids must lie in [0, {self.vocab_size}), got '
                       f'[{int(tokens.min())}, {int(tokens.max())}]')
    if length > self.context_length:
      raise ValueError(f'{length} tokens exceed the context length {self.context_length}')
    table = self.param('token_embedding', _boxed(nn.initializers.normal(0.02), 'vocab', 'embed'),
                       (self.vocab_size, self.width), jnp.float32)
    pos = self.param('positional_embedding', _boxed(nn.initializers.normal(0.01), 'seq', 'embed'),
                     (self.context_length, self.width), jnp.float32)
    x = jnp.take(table, tokens, axis=0) + pos[:length]
    for i in range(self.depth):
      x = ResidualAttentionBlock(self.num_heads, self.dtype_mm, name=f'resblocks_{i}')(x)
    x = _layer_norm('ln_final')(x)
    pooled = x[jnp.arange(x.shape[0]), jnp.argmax(tokens, axis=-1)]
    proj = self.param('text_projection',
                      _boxed(nn.initializers.normal(self.width ** -0.5), 'embed', None),
                      (self.width, self.embed_dim), jnp.float32)
    embedding = jnp.dot(pooled, proj)
    return embedding, {'encoded': x, 'pooled': pooled}


def clip_text_encoder(variant: str = 'ViT-B/32', **kwargs) -> CLIPTextEncoder:
  """The text tower of an OpenAI CLIP model; kwargs override (e.g. a tiny variant)."""
  # Text configs of OpenAI's released models (clip/model.py build_model: heads = width/64).
  configs = {'ViT-B/32': (512, 12, 8, 512), 'ViT-B/16': (512, 12, 8, 512),
             'ViT-L/14': (768, 12, 12, 768), 'RN50': (512, 12, 8, 1024),
             'RN101': (512, 12, 8, 512)}
  if variant not in configs:
    raise ValueError(f'unknown CLIP variant {variant!r}; known: {sorted(configs)}')
  width, depth, heads, embed = configs[variant]
  return CLIPTextEncoder(**{'width': width, 'depth': depth, 'num_heads': heads,
                            'embed_dim': embed, **kwargs})


# --- Precomputed text embeddings ----------------------------------------------------

def save_text_embeddings(path: Union[str, os.PathLike], table: Mapping[str, Any]) -> None:
  """Writes {text: (D,) vector} as an .npz with `texts` (N,) and `embeddings` (N, D)."""
  texts = list(table)
  if not texts:
    raise ValueError('no text embeddings to save')
  vectors = [np.asarray(table[t], np.float32).reshape(-1) for t in texts]
  sizes = {v.shape[0] for v in vectors}
  if len(sizes) != 1:
    raise ValueError(f'text embeddings have different sizes: {sorted(sizes)}')
  np.savez(path, texts=np.array(texts, dtype=str), embeddings=np.stack(vectors))


def load_text_embeddings(path: Union[str, os.PathLike]) -> dict[str, np.ndarray]:
  """{text: (D,) float32} from an .npz (`texts` + `embeddings`, or one key per text)."""
  if not os.path.exists(path):
    raise FileNotFoundError(f'text embedding file not found: {path}')
  # Truncated / pickled files, NaN/Inf or complex embeddings: DataFileError naming the file.
  data = errors.read_npz(path, kinds=errors.REAL_KINDS + 'U')
  if {'texts', 'embeddings'} <= set(data):
    texts, emb = data['texts'], data['embeddings']
    if emb.ndim != 2 or len(texts) != len(emb) or emb.dtype.kind not in errors.REAL_KINDS:
      raise errors.DataFileError(path, f'texts {texts.shape} and embeddings {emb.shape} '
                                 f'{emb.dtype} do not pair up')
    return {str(t): np.asarray(e, np.float32) for t, e in zip(texts, emb)}
  for k, v in data.items():
    errors.check_array(v, path, repr(k))
  return {k: np.asarray(v, np.float32).reshape(-1) for k, v in data.items()}


@dataclasses.dataclass
class TextEmbeddings:
  """A frozen text encoder as a lookup table: `lookup(texts) -> (N, D)`."""
  table: dict[str, np.ndarray]

  @classmethod
  def from_file(cls, path: Union[str, os.PathLike]) -> 'TextEmbeddings':
    return cls(load_text_embeddings(path))

  @property
  def dim(self) -> int:
    return next(iter(self.table.values())).shape[0]

  def lookup(self, texts: Sequence[str]) -> np.ndarray:
    missing = [t for t in texts if t not in self.table]
    if missing:
      raise KeyError(f'{len(missing)} texts have no precomputed embedding, e.g. {missing[:3]}')
    return np.stack([self.table[t] for t in texts]) if texts else np.zeros((0, self.dim),
                                                                           np.float32)


def embed_texts(encode: Callable[[np.ndarray], Any], tokenize: Callable[[Sequence[str]], np.ndarray],
                texts: Iterable[str], batch_size: int = 256) -> dict[str, np.ndarray]:
  """{text: embedding} for the distinct texts, in batches.

  encode: tokens (B, L) -> (B, D), e.g. `lambda t: model.apply(params, t)[0]`;
  tokenize: texts -> (B, L) tokens, e.g. `tokenizer.tokenize`.
  """
  unique = list(dict.fromkeys(texts))
  out: dict[str, np.ndarray] = {}
  for s in range(0, len(unique), batch_size):
    chunk = unique[s:s + batch_size]
    emb = np.asarray(encode(tokenize(chunk)), np.float32)
    if emb.shape[0] != len(chunk):
      raise ValueError(f'encode returned {emb.shape[0]} embeddings for {len(chunk)} texts')
    out.update(zip(chunk, emb))
  return out
