"""jaxvision.nn.transformer.TransformerBlock against a float64 numpy block."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads
from scipy import special

from jaxvision.nn import transformer

B, T, D, H = 2, 6, 8, 2


def _x(shape, seed=0):
  return jnp.asarray(np.random.default_rng(seed).normal(size=shape), jnp.float32)


def _params(module, *args, **kw):
  return nn.meta.unbox(module.init(jax.random.key(0), *args, **kw))['params']


def np_ln(x, p, eps):
  mu = x.mean(-1, keepdims=True)
  var = ((x - mu) ** 2).mean(-1, keepdims=True)
  return (x - mu) / np.sqrt(var + eps) * p['scale'] + p['bias']


def np_mha(p, xq, xkv, mask=None):
  q = np.einsum('btd,dhk->bthk', xq, p['query']['kernel']) + p['query']['bias']
  k = np.einsum('btd,dhk->bthk', xkv, p['key']['kernel']) + p['key']['bias']
  v = np.einsum('btd,dhk->bthk', xkv, p['value']['kernel']) + p['value']['bias']
  logits = np.einsum('bthk,bshk->bhts', q, k) / np.sqrt(q.shape[-1])
  if mask is not None:
    logits = np.where(mask, logits, -1e300)
  w = special.softmax(logits, axis=-1)
  out = np.einsum('bhts,bshk->bthk', w, v)
  return np.einsum('bthk,hkd->btd', out, p['out']['kernel']) + p['out']['bias']


def np_mlp(p, x, act):
  h = x @ p['Dense_0']['kernel'] + p['Dense_0']['bias']
  h = {'gelu': lambda u: 0.5 * u * (1 + special.erf(u / np.sqrt(2))),
       'gelu_tanh': lambda u: 0.5 * u * (1 + np.tanh(np.sqrt(2 / np.pi) * (u + 0.044715 * u ** 3))),
       'relu': lambda u: np.maximum(u, 0)}[act](h)
  return h @ p['Dense_1']['kernel'] + p['Dense_1']['bias']


def np_block(p, x, *, norm='pre', act='gelu_tanh', eps=1e-6, mask=None, context=None,
             keep=(1.0, 1.0), query_mask=None):
  p = jax.tree.map(lambda a: np.asarray(a, np.float64), p)
  x = np.asarray(x, np.float64)
  qm = 1.0 if query_mask is None else np.asarray(query_mask, np.float64)[..., None]
  if norm == 'pre':
    y = np_ln(x, p['LayerNorm_0'], eps)
    x = x + keep[0] * qm * np_mha(p['MultiHeadDotProductAttention_0'], y, y, mask)
    if context is not None:
      y = np_ln(x, p['LayerNorm_cross'], eps)
      x = x + qm * np_mha(p['CrossAttention_0'], y, np.asarray(context, np.float64))
    return x + keep[1] * np_mlp(p['MlpBlock_0'], np_ln(x, p['LayerNorm_1'], eps), act)
  x = np_ln(x + np_mha(p['MultiHeadDotProductAttention_0'], x, x, mask), p['LayerNorm_0'], eps)
  return np_ln(x + np_mlp(p['MlpBlock_0'], x, act), p['LayerNorm_1'], eps)


@pytest.mark.parametrize('norm,act', [('pre', 'gelu_tanh'), ('post', 'gelu'), ('pre', 'relu')])
def test_block_matches_reference(norm, act):
  blk = transformer.TransformerBlock(H, norm=norm, activation=act, mlp_dim=16)
  x = _x((B, T, D))
  p = _params(blk, x)
  assert set(p) == {'LayerNorm_0', 'MultiHeadDotProductAttention_0', 'LayerNorm_1', 'MlpBlock_0'}
  np.testing.assert_allclose(blk.apply({'params': p}, x), np_block(p, x, norm=norm, act=act),
                             atol=2e-5, rtol=1e-5)


def test_causal_mask_keep_and_query_mask():
  blk = transformer.TransformerBlock(H, causal=True, ln_eps=1e-5)
  x = _x((B, T, D))
  p = _params(blk, x)
  causal = np.tril(np.ones((T, T), bool))
  qmask = np.ones((B, T), bool)
  qmask[1, 4:] = False
  for keep in ((1.0, 1.0), (0.0, 1.0), (1.0, 0.0)):
    got = blk.apply({'params': p}, x, keep=keep, query_mask=jnp.asarray(qmask))
    want = np_block(p, x, eps=1e-5, mask=causal, keep=keep, query_mask=qmask)
    np.testing.assert_allclose(got, want, atol=2e-5, rtol=1e-5)
  np.testing.assert_allclose(blk.apply({'params': p}, x, keep=(0.0, 0.0)), x, atol=0)


def test_batch_wide_keep_skips_the_dropped_sublayer_with_the_same_result():
  blk = transformer.TransformerBlock(H, causal=True, ln_eps=1e-5)
  x = _x((B, T, D))
  p = _params(blk, x)
  causal = np.tril(np.ones((T, T), bool))
  fn = jax.jit(lambda k0, k1: blk.apply({'params': p}, x, keep=(k0, k1), train=True))
  for keep in ((1.0, 1.0), (0.0, 1.0), (1.0, 0.0), (0.0, 0.0)):
    got = fn(jnp.float32(keep[0]), jnp.float32(keep[1]))     # traced scalars: lax.cond
    want = np_block(p, x, eps=1e-5, mask=causal, keep=keep)
    np.testing.assert_allclose(got, want, atol=2e-5, rtol=1e-5)
  jaxpr = str(jax.make_jaxpr(lambda k: blk.apply({'params': p}, x, keep=(k, k), train=True))(
      jnp.float32(1.0)))
  assert jaxpr.count('cond[') == 2
  # Per-sample factors (B, 1, 1) cannot skip: they multiply, as before.
  per_sample = jnp.asarray([0.0, 1.0])[:, None, None]
  jaxpr = str(jax.make_jaxpr(lambda k: blk.apply({'params': p}, x, keep=(k, k), train=True))(
      per_sample))
  assert 'cond[' not in jaxpr


def test_cross_attention_sublayer():
  blk = transformer.TransformerBlock(H)
  x, ctx = _x((B, T, D)), _x((B, 3, D), 1)
  p = _params(blk, x, ctx)
  assert {'LayerNorm_cross', 'CrossAttention_0'} <= set(p)
  got = blk.apply({'params': p}, x, ctx)
  assert got.shape == (B, T, D)
  np.testing.assert_allclose(got, np_block(p, x, context=ctx), atol=2e-5, rtol=1e-5)
  assert float(jnp.max(jnp.abs(got - blk.apply({'params': p}, x, ctx + 1.0)))) > 1e-4


def test_kv_cache_decode_through_the_block():
  kw = dict(num_heads=4, num_kv_heads=2, causal=True)
  full = transformer.TransformerBlock(**kw)
  dec = transformer.TransformerBlock(**kw, decode=True)
  x = _x((B, T, D))
  variables = dec.init(jax.random.key(0), x)
  params, cache = variables['params'], variables['cache']
  want = full.apply({'params': params}, x)
  outs = []
  for t in range(T):
    y, mutated = dec.apply({'params': params, 'cache': cache}, x[:, t:t + 1], mutable=['cache'])
    cache = mutated['cache']
    outs.append(y)
  np.testing.assert_allclose(jnp.concatenate(outs, 1), want, atol=1e-5)


def test_names_and_shared_scope():
  class Flat(nn.Module):
    @nn.compact
    def __call__(self, x):
      for i in range(2):
        x = transformer.TransformerBlock(
            H, names={'attn_norm': f'l{i}_n1', 'attn': f'l{i}_attn', 'mlp_norm': f'l{i}_n2',
                      'mlp': f'l{i}_ff'}, mlp_names=('wi', 'wo'), share_scope=True,
            name=f'layer_{i}')(x)
      return x

  x = _x((B, T, D))
  p = _params(Flat(), x)
  assert set(p) == {f'l{i}_{n}' for i in range(2) for n in ('n1', 'attn', 'n2', 'ff')}
  assert set(p['l0_ff']) == {'wi', 'wo'}
  with pytest.raises(ValueError, match="'pre' or 'post'"):
    transformer.TransformerBlock(H, norm='sandwich').init(jax.random.key(0), x)


def test_dropout_only_in_training():
  blk = transformer.TransformerBlock(H, dropout=0.5)
  x = _x((B, T, D))
  p = _params(blk, x)
  ev = blk.apply({'params': p}, x)
  np.testing.assert_allclose(ev, np_block(p, x), atol=2e-5, rtol=1e-5)
  tr = blk.apply({'params': p}, x, train=True, rngs={'dropout': jax.random.key(2)})
  assert float(jnp.max(jnp.abs(tr - ev))) > 1e-3


def test_gradients():
  blk = transformer.TransformerBlock(1, mlp_dim=4, causal=True)
  x = _x((1, 3, 4))
  p = _params(blk, x)
  check_grads(lambda p, x: blk.apply({'params': p}, x), (p, x), order=1, modes=('rev',),
              atol=2e-2, rtol=2e-2, eps=1e-2)
