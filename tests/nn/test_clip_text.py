"""Tests of jaxvision.nn.clip_text / clip_checkpoint against an independent numpy CLIP.

The state_dict is written here with OpenAI's key names (clip/model.py) and random
values for a small config; the reference forward pass below works on those PyTorch
layouts directly (x W^T + b, in_proj rows q;k;v, head-major), in float64.
"""

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax.sharding import AxisType, PartitionSpec as P
import numpy as np
import pytest

from jaxvision.nn import clip_checkpoint as cc
from jaxvision.nn import clip_text

W, LAYERS, HEADS, VOCAB, CTX, EMBED = 64, 2, 4, 100, 16, 32


def make_state_dict(seed=0, width=W, layers=LAYERS, vocab=VOCAB, ctx=CTX, embed=EMBED):
  rng = np.random.default_rng(seed)
  n = lambda *s, std=1.0: (rng.normal(size=s) * std).astype(np.float32)  # pylint: disable=unnecessary-lambda-assignment
  sd = {'token_embedding.weight': n(vocab, width, std=0.5),
        'positional_embedding': n(ctx, width, std=0.3),
        'ln_final.weight': 1 + n(width, std=0.1), 'ln_final.bias': n(width, std=0.1),
        'text_projection': n(width, embed, std=width ** -0.5),
        # Entries of the full CLIP model that the text loader must ignore.
        'logit_scale': np.float32(4.6), 'visual.proj': n(8, embed),
        'visual.transformer.resblocks.0.attn.in_proj_weight': n(24, 8),
        'input_resolution': np.int64(224)}
  for i in range(layers):
    p = f'transformer.resblocks.{i}.'
    sd.update({
        p + 'ln_1.weight': 1 + n(width, std=0.1), p + 'ln_1.bias': n(width, std=0.1),
        p + 'attn.in_proj_weight': n(3 * width, width, std=width ** -0.5),
        p + 'attn.in_proj_bias': n(3 * width, std=0.1),
        p + 'attn.out_proj.weight': n(width, width, std=width ** -0.5),
        p + 'attn.out_proj.bias': n(width, std=0.1),
        p + 'ln_2.weight': 1 + n(width, std=0.1), p + 'ln_2.bias': n(width, std=0.1),
        p + 'mlp.c_fc.weight': n(4 * width, width, std=width ** -0.5),
        p + 'mlp.c_fc.bias': n(4 * width, std=0.1),
        p + 'mlp.c_proj.weight': n(width, 4 * width, std=(4 * width) ** -0.5),
        p + 'mlp.c_proj.bias': n(width, std=0.1)})
  return sd


def _ln(x, w, b):
  mu = x.mean(-1, keepdims=True)
  var = ((x - mu) ** 2).mean(-1, keepdims=True)
  return (x - mu) / np.sqrt(var + 1e-5) * w + b


def reference_encode_text(sd, tokens, heads):
  """OpenAI's CLIP.encode_text in numpy float64."""
  sd = {k: np.asarray(v, np.float64) for k, v in sd.items()}
  b, length = tokens.shape
  x = sd['token_embedding.weight'][tokens] + sd['positional_embedding'][:length]
  width = x.shape[-1]
  hd = width // heads
  mask = np.triu(np.full((length, length), -np.inf), 1)
  i = 0
  while f'transformer.resblocks.{i}.ln_1.weight' in sd:
    p = f'transformer.resblocks.{i}.'
    y = _ln(x, sd[p + 'ln_1.weight'], sd[p + 'ln_1.bias'])
    qkv = y @ sd[p + 'attn.in_proj_weight'].T + sd[p + 'attn.in_proj_bias']
    q, k, v = (qkv[..., j * width:(j + 1) * width].reshape(b, length, heads, hd)
               for j in range(3))
    s = np.einsum('bqhd,bkhd->bhqk', q * hd ** -0.5, k) + mask
    a = np.exp(s - s.max(-1, keepdims=True))
    a /= a.sum(-1, keepdims=True)
    o = np.einsum('bhqk,bkhd->bqhd', a, v).reshape(b, length, width)
    x = x + o @ sd[p + 'attn.out_proj.weight'].T + sd[p + 'attn.out_proj.bias']
    y = _ln(x, sd[p + 'ln_2.weight'], sd[p + 'ln_2.bias'])
    y = y @ sd[p + 'mlp.c_fc.weight'].T + sd[p + 'mlp.c_fc.bias']
    y = y / (1 + np.exp(-1.702 * y))
    x = x + y @ sd[p + 'mlp.c_proj.weight'].T + sd[p + 'mlp.c_proj.bias']
    i += 1
  x = _ln(x, sd['ln_final.weight'], sd['ln_final.bias'])
  return x[np.arange(b), tokens.argmax(-1)] @ sd['text_projection']


def make_tokens(seed=1, batch=3, length=CTX, eot=VOCAB - 1):
  """Rows like clip.tokenize: SOT, words, EOT (the largest id), zero padding."""
  rng = np.random.default_rng(seed)
  tokens = np.zeros((batch, length), np.int32)
  for r, n in enumerate(rng.integers(1, length - 1, size=batch)):
    tokens[r, 0] = eot - 1
    tokens[r, 1:n + 1] = rng.integers(1, eot - 1, size=n)
    tokens[r, n + 1] = eot
  return tokens


@pytest.mark.parametrize('as_file', [False, True])
def test_loaded_checkpoint_matches_numpy_clip(tmp_path, as_file):
  sd = make_state_dict()
  source = sd
  if as_file:
    source = tmp_path / 'clip.npz'
    np.savez(source, **sd)
  model, params = cc.load_clip_text(source, num_heads=HEADS)
  assert (model.width, model.depth, model.num_heads, model.vocab_size, model.context_length,
          model.embed_dim) == (W, LAYERS, HEADS, VOCAB, CTX, EMBED)
  tokens = make_tokens()
  apply = jax.jit(model.apply)
  got, out = apply({'params': params}, tokens)
  want = reference_encode_text(sd, tokens, HEADS)
  np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
  assert out['encoded'].shape == (3, CTX, W) and out['pooled'].shape == (3, W)
  # Shorter inputs use the first positions (OpenAI requires exactly context_length).
  short = make_tokens(seed=2, length=9)
  np.testing.assert_allclose(apply({'params': params}, short)[0],
                             reference_encode_text(sd, short, HEADS), rtol=1e-5, atol=1e-5)


def test_openai_head_rule_fp16_and_prefix():
  # OpenAI's build_model sets heads = width // 64: one head for width 64.
  sd = {'clip_model.' + k: v for k, v in make_state_dict(layers=1).items()}
  sd = {k: (v.astype(np.float16) if np.ndim(v) else v) for k, v in sd.items()}
  model, params = cc.load_clip_text(sd, prefix='clip_model.')
  assert model.num_heads == 1 and params['token_embedding'].dtype == np.float32
  tokens = make_tokens()
  ref = reference_encode_text({k[len('clip_model.'):]: v for k, v in sd.items()}, tokens, 1)
  np.testing.assert_allclose(jax.jit(model.apply)({'params': params}, tokens)[0], ref, rtol=1e-4,
                             atol=1e-4)


def test_loader_errors_name_the_problem():
  sd = make_state_dict()
  del sd['transformer.resblocks.1.mlp.c_fc.bias']
  with pytest.raises(KeyError, match='resblocks.1.mlp.c_fc.bias'):
    cc.load_clip_text(sd, num_heads=HEADS)
  sd = make_state_dict()
  sd['transformer.resblocks.0.attn.in_proj_weight'] = np.zeros((3 * W, W + 1), np.float32)
  with pytest.raises(ValueError, match=r'in_proj_weight.*\(192, 65\)'):
    cc.load_clip_text(sd, num_heads=HEADS)
  with pytest.raises(KeyError, match='is this a CLIP checkpoint'):
    cc.load_clip_text({'foo': np.zeros(3)})
  with pytest.raises(ValueError, match='not divisible'):
    cc.load_clip_text(make_state_dict(), num_heads=3)
  _, params = cc.load_clip_text(make_state_dict(), num_heads=HEADS)
  params['extra'] = np.zeros(2)
  del params['ln_final']['bias']
  with pytest.raises(ValueError, match='missing ln_final/bias; unexpected extra'):
    cc.check_params(clip_text.CLIPTextEncoder(VOCAB, CTX, W, LAYERS, HEADS, EMBED), params)


def small_model(**kw):
  return clip_text.CLIPTextEncoder(**{**dict(vocab_size=VOCAB, context_length=CTX, width=W,
                                             depth=LAYERS, num_heads=HEADS, embed_dim=EMBED),
                                      **kw})


def test_causal_and_eot_pooling():
  model, params = cc.load_clip_text(make_state_dict(), num_heads=HEADS)
  variables = {'params': params}  # Loaded weights: no init to compile.
  tokens = make_tokens(batch=2)
  apply = jax.jit(model.apply)
  emb, out = apply(variables, tokens)
  # Changing the padding after [EOT] changes neither the embedding nor earlier tokens.
  eot = tokens.argmax(-1)
  changed = tokens.copy()
  changed[0, eot[0] + 1:] = 5
  emb2, out2 = apply(variables, changed)
  np.testing.assert_allclose(emb2, emb, atol=1e-6)
  np.testing.assert_allclose(out2['encoded'][0, :eot[0] + 1], out['encoded'][0, :eot[0] + 1],
                             atol=1e-6)
  np.testing.assert_allclose(out['pooled'], out['encoded'][np.arange(2), eot], atol=0)
  with pytest.raises(ValueError, match='exceed the context length 16'):
    apply(variables, np.zeros((1, CTX + 1), np.int32))
  with pytest.raises(ValueError, match='integers'):
    apply(variables, np.zeros((1, 4), np.float32))
  with pytest.raises(ValueError, match=r'token ids must lie in \[0, 100\), got \[0, 100\]'):
    model.apply(variables, np.array([[0, 100]], np.int32))


def test_variants_and_partitioning():
  b32 = clip_text.clip_text_encoder('ViT-B/32')
  assert (b32.vocab_size, b32.context_length, b32.width, b32.depth, b32.num_heads,
          b32.embed_dim) == (49408, 77, 512, 12, 8, 512)
  variables = jax.eval_shape(lambda: b32.init(jax.random.key(0), jnp.zeros((1, 77), jnp.int32)))
  count = sum(np.prod(x.shape) for x in jax.tree.leaves(nn.meta.unbox(variables)))
  # OpenAI's ViT-B/32 text tower, text_projection included: 63,428,096 parameters.
  assert count == 49408 * 512 + 77 * 512 + 12 * 3_152_384 + 2 * 512 + 512 * 512
  with pytest.raises(ValueError, match='unknown CLIP variant'):
    clip_text.clip_text_encoder('ViT-Q/3')
  mesh = jax.make_mesh((1, 1, 1), ('data', 'fsdp', 'model'), axis_types=(AxisType.Auto,) * 3)
  rules = [('embed', 'fsdp'), ('mlp', 'model'), ('heads', 'model'), ('vocab', 'model')]
  with jax.set_mesh(mesh), nn.logical_axis_rules(rules):
    abstract = jax.eval_shape(lambda: small_model().init(jax.random.key(0),
                                                         jnp.zeros((1, 4), jnp.int32)))
    specs = nn.logical_to_mesh(nn.get_partition_spec(abstract))['params']
  assert specs['token_embedding'] == P('model', 'fsdp')
  assert specs['resblocks_0']['attn']['query']['kernel'] == P('fsdp', 'model', None)
  assert specs['resblocks_0']['mlp']['c_fc']['kernel'] == P('fsdp', 'model')
  is_box = lambda x: isinstance(x, nn.LogicallyPartitioned)  # pylint: disable=unnecessary-lambda-assignment
  assert all(is_box(x) for x in jax.tree.leaves(abstract['params'], is_leaf=is_box))


def test_sharded_apply_matches_plain():
  axes = (2, 2, 2) if jax.device_count() >= 8 else (1, 1, 1)
  mesh = jax.make_mesh(axes, ('data', 'fsdp', 'model'), axis_types=(AxisType.Auto,) * 3)
  rules = [('batch', 'data'), ('embed', 'fsdp'), ('mlp', 'model'), ('heads', 'model')]
  model, params = cc.load_clip_text(make_state_dict(), num_heads=HEADS)
  tokens = make_tokens(batch=4)
  want, _ = model.apply({'params': params}, tokens)
  with jax.set_mesh(mesh), nn.logical_axis_rules(rules):
    got, _ = jax.jit(lambda p, t: model.apply({'params': p}, t))(params, tokens)
  np.testing.assert_allclose(got, want, atol=1e-5)


def test_precomputed_text_embeddings(tmp_path):
  model, params = cc.load_clip_text(make_state_dict(), num_heads=HEADS)
  vocab = {'walk': 3, 'jump': 4, 'left': 5}

  def tokenize(texts):  # A word-level stand-in for BPETokenizer.tokenize.
    out = np.zeros((len(texts), CTX), np.int32)
    for r, t in enumerate(texts):
      ids = [VOCAB - 2] + [vocab[w] for w in t.split()] + [VOCAB - 1]
      out[r, :len(ids)] = ids
    return out

  encode = jax.jit(lambda t: model.apply({'params': params}, t)[0])
  texts = ['walk', 'jump left', 'walk', 'left']
  table = clip_text.embed_texts(encode, tokenize, texts, batch_size=2)
  assert list(table) == ['walk', 'jump left', 'left']
  np.testing.assert_allclose(table['jump left'],
                             reference_encode_text(make_state_dict(), tokenize(['jump left']),
                                                   HEADS)[0], rtol=1e-5, atol=1e-5)
  clip_text.save_text_embeddings(tmp_path / 'emb.npz', table)
  lookup = clip_text.TextEmbeddings.from_file(tmp_path / 'emb.npz')
  assert lookup.dim == EMBED
  np.testing.assert_array_equal(lookup.lookup(['left', 'walk']),
                                np.stack([table['left'], table['walk']]))
  with pytest.raises(KeyError, match="1 texts have no precomputed embedding.*'run'"):
    lookup.lookup(['walk', 'run'])
  # The other layout: one key per text.
  np.savez(tmp_path / 'keyed.npz', **{'a person walks': np.ones(4), 'b': np.zeros((1, 4))})
  keyed = clip_text.load_text_embeddings(tmp_path / 'keyed.npz')
  assert set(keyed) == {'a person walks', 'b'} and keyed['b'].shape == (4,)
  with pytest.raises(FileNotFoundError, match='text embedding file not found'):
    clip_text.load_text_embeddings(tmp_path / 'missing.npz')
  with pytest.raises(ValueError, match='different sizes'):
    clip_text.save_text_embeddings(tmp_path / 'x.npz', {'a': np.ones(3), 'b': np.ones(4)})
