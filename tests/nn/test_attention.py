"""jaxvision.nn.attention against an independent float64 numpy softmax attention."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

from jaxvision.nn import attention
from jaxvision.nn import positional

B, T, S, D, H, HD = 2, 7, 5, 12, 4, 3


def _x(shape, seed=0):
  return jnp.asarray(np.random.default_rng(seed).normal(size=shape), jnp.float32)


def _params(module, *args, **kw):
  return nn.meta.unbox(module.init(jax.random.key(0), *args, **kw))['params']


# --- The reference ----------------------------------------------------------------------

def np_rope(x, angles):
  """Rotates channel i with channel i + r/2 by angle[i] (x-transformers' rotate_half)."""
  r = angles.shape[-1]
  half = r // 2
  a, b = x[..., :half], x[..., half:r]
  cos, sin = np.cos(angles[..., :half]), np.sin(angles[..., :half])
  return np.concatenate([a * cos - b * sin, b * cos + a * sin, x[..., r:]], axis=-1)


def np_attention(p, xq, xkv=None, *, mask=None, bias=None, rope=None, rope_kv=None,
                 names=('query', 'key', 'value', 'out')):
  """Softmax attention written from the equations, in float64, one head at a time."""
  f = lambda a: np.asarray(a, np.float64)  # pylint: disable=unnecessary-lambda-assignment
  xq = f(xq)
  xkv = xq if xkv is None else f(xkv)
  proj = lambda x, n: (np.einsum('btd,dhk->bthk', x, f(p[n]['kernel']))  # pylint: disable=g-long-lambda
                       + (f(p[n]['bias']) if 'bias' in p[n] else 0.0))
  q, k, v = proj(xq, names[0]), proj(xkv, names[1]), proj(xkv, names[2])
  groups = q.shape[2] // k.shape[2]
  k, v = np.repeat(k, groups, axis=2), np.repeat(v, groups, axis=2)
  if rope is not None:
    q = np_rope(q, f(rope)[:, :, None])
    k = np_rope(k, f(rope if rope_kv is None else rope_kv)[:, :, None])
  bsz, t, h, hd = q.shape
  out = np.zeros((bsz, t, h, hd))
  for b in range(bsz):
    for i in range(h):
      logits = q[b, :, i] @ k[b, :, i].T / np.sqrt(hd)
      if bias is not None:
        logits = logits + np.broadcast_to(f(bias), (bsz, h) + logits.shape)[b, i]
      if mask is not None:
        m = np.broadcast_to(np.asarray(mask), (bsz, h) + logits.shape)[b, i]
        logits = np.where(m, logits, -1e300)
      w = np.exp(logits - logits.max(-1, keepdims=True))
      out[b, :, i] = (w / w.sum(-1, keepdims=True)) @ v[b, :, i]
  y = np.einsum('bthk,hkd->btd', out, f(p[names[3]]['kernel']))
  return y + (f(p[names[3]]['bias']) if 'bias' in p[names[3]] else 0.0)


def _check(module, p, *args, atol=2e-5, ref_kw=None, **kw):
  got = module.apply({'params': p}, *args, **kw)
  want = np_attention(p, *args, **(ref_kw or {}), **{k: v for k, v in kw.items()
                                                    if k in ('mask', 'bias', 'rope', 'rope_kv')})
  np.testing.assert_allclose(got, want, atol=atol, rtol=1e-5)
  return got


# --- Tests ------------------------------------------------------------------------------

def test_plain_self_attention_matches_reference():
  m = attention.MultiHeadAttention(H)
  x = _x((B, T, D))
  p = _params(m, x)
  assert p['query']['kernel'].shape == (D, H, D // H) and p['out']['kernel'].shape == (H, D // H, D)
  _check(m, p, x)


@pytest.mark.parametrize('causal,window', [(True, None), (False, 2), (True, 2)])
def test_builtin_masks(causal, window):
  m = attention.MultiHeadAttention(H, head_dim=HD, causal=causal, window=window)
  x = _x((B, T, D))
  p = _params(m, x)
  i, j = np.arange(T)[:, None], np.arange(T)[None]
  allowed = np.ones((T, T), bool)
  if causal:
    allowed &= j <= i
  if window is not None:
    allowed &= (i - j <= window) & (i - j >= 0 if causal else j - i <= window)
  got = _check(m, p, x, ref_kw={'mask': allowed})
  # ...and the mask really restricts: perturbing a disallowed key leaves row 0 alone.
  x2 = x.at[:, T - 1].add(10.0)
  np.testing.assert_allclose(m.apply({'params': p}, x2)[:, 0], got[:, 0], atol=1e-6)


def test_padding_mask_and_explicit_mask():
  m = attention.MultiHeadAttention(H, head_dim=HD)
  x = _x((B, T, D))
  p = _params(m, x)
  valid = np.ones((B, T), bool)
  valid[0, 4:] = False
  got = _check(m, p, x, mask=attention.key_padding_mask(valid))
  # Padded keys do not influence valid outputs.
  x2 = x.at[0, 5].set(100.0)
  np.testing.assert_allclose(m.apply({'params': p}, x2, mask=attention.key_padding_mask(valid))[0, :4],
                             got[0, :4], atol=1e-5)
  per_head = np.random.default_rng(3).random((B, H, T, T)) > 0.3
  per_head[..., 0] = True
  _check(m, p, x, mask=per_head)


def test_helpers_equal_numpy():
  q, k = np.arange(5), np.arange(7) - 1
  np.testing.assert_array_equal(attention.causal_mask(q, k), k[None] <= q[:, None])
  np.testing.assert_array_equal(attention.band_mask(q, k, 2), np.abs(q[:, None] - k[None]) <= 2)
  d = q[:, None] - k[None]
  np.testing.assert_array_equal(attention.band_mask(q, k, 2, causal=True), (d >= 0) & (d <= 2))
  assert attention.combine_masks(None, None) is None


def test_additive_bias():
  m = attention.MultiHeadAttention(H, head_dim=HD)
  x = _x((B, T, D))
  p = _params(m, x)
  _check(m, p, x, bias=np.asarray(_x((B, 1, T, T), 4)))
  _check(m, p, x, bias=np.asarray(_x((B, H, T, T), 5)))
  # A -inf bias acts as a mask.
  seg = np.array([0, 0, 0, 1, 1, 1, 1])
  block = np.where(seg[:, None] == seg[None], 0.0, -np.inf)
  _check(m, p, x, bias=jnp.asarray(block, jnp.float32), ref_kw={'mask': seg[:, None] == seg[None]})


def test_rotary_matches_reference_and_depends_only_on_offsets():
  m = attention.MultiHeadAttention(H, head_dim=8)
  x = _x((B, T, D))
  p = _params(m, x)
  pos = np.broadcast_to(np.arange(T, dtype=np.float32), (B, T))
  angles = positional.rope_frequencies(pos, 4)
  _check(m, p, x, rope=angles)
  # <R(m) q, R(n) k> is a function of m - n only.
  q, k = np.random.default_rng(6).normal(size=(2, 1, 1, 8))
  score = lambda a, b: float(jnp.sum(  # pylint: disable=g-long-lambda
      positional.apply_rope(jnp.asarray(q), positional.rope_frequencies(jnp.full((1,), a), 8))
      * positional.apply_rope(jnp.asarray(k), positional.rope_frequencies(jnp.full((1,), b), 8))))
  for shift in (1.0, 7.0, 113.0):
    np.testing.assert_allclose(score(3.0 + shift, 1.0 + shift), score(3.0, 1.0), rtol=1e-4)
  assert abs(score(3.0, 1.0) - score(4.0, 1.0)) > 1e-3
  # Module level: shifting every position by the same amount changes nothing.
  shifted = positional.rope_frequencies(pos + 50.0, 4)
  got = m.apply({'params': p}, x, rope=angles)
  np.testing.assert_allclose(m.apply({'params': p}, x, rope=shifted), got, atol=2e-5)
  assert float(jnp.max(jnp.abs(got - m.apply({'params': p}, x)))) > 1e-3


def test_gqa_equals_mha_with_repeated_kv():
  gqa = attention.MultiHeadAttention(4, head_dim=HD, num_kv_heads=2)
  mha = attention.MultiHeadAttention(4, head_dim=HD)
  x = _x((B, T, D))
  p = _params(gqa, x)
  assert p['key']['kernel'].shape == (D, 2, HD) and p['query']['kernel'].shape == (D, 4, HD)
  rep = lambda t: {'kernel': jnp.repeat(t['kernel'], 2, axis=1), 'bias': jnp.repeat(t['bias'], 2, axis=0)}  # pylint: disable=unnecessary-lambda-assignment
  p_mha = dict(p, key=rep(p['key']), value=rep(p['value']))
  np.testing.assert_allclose(gqa.apply({'params': p}, x), mha.apply({'params': p_mha}, x),
                             atol=1e-6)
  _check(gqa, p, x)   # the reference repeats k/v itself
  mqa = attention.MultiHeadAttention(4, head_dim=HD, num_kv_heads=1)
  _check(mqa, _params(mqa, x), x)


@pytest.mark.parametrize('kw', [{}, {'num_kv_heads': 2, 'window': 3}])
def test_kv_cache_decode_equals_full_causal_forward(kw):
  full = attention.MultiHeadAttention(4, head_dim=HD, causal=True, **kw)
  dec = attention.MultiHeadAttention(4, head_dim=HD, causal=True, decode=True, **kw)
  x = _x((B, T, D))
  angles = positional.rope_frequencies(jnp.broadcast_to(jnp.arange(T), (B, T)), 2)
  variables = dec.init(jax.random.key(0), x, rope=angles)
  params, cache = variables['params'], variables['cache']
  assert cache['cached_key'].shape == (B, T, kw.get('num_kv_heads', 4), HD)
  want = full.apply({'params': params}, x, rope=angles)
  outs, start = [], 0
  for n in (3, 1, 1, 2):    # a prefill chunk, then single tokens, then a chunk of 2
    y, mutated = dec.apply({'params': params, 'cache': cache}, x[:, start:start + n],
                           rope=angles[:, start:start + n], mutable=['cache'])
    cache = mutated['cache']
    outs.append(y)
    start += n
  assert int(cache['cache_index']) == T
  np.testing.assert_allclose(jnp.concatenate(outs, axis=1), want, atol=1e-5)
  with pytest.raises(ValueError, match='exceed the KV cache'):
    dec.apply({'params': params, 'cache': variables['cache']}, jnp.zeros((B, T + 1, D)),
              mutable=['cache'])


def test_cross_attention_shapes_and_reference():
  m = attention.MultiHeadAttention(H, head_dim=HD, out_features=9)
  xq, xkv = _x((B, T, D)), _x((B, S, 6), 1)
  p = _params(m, xq, xkv)
  assert p['query']['kernel'].shape == (D, H, HD) and p['key']['kernel'].shape == (6, H, HD)
  assert m.apply({'params': p}, xq, xkv).shape == (B, T, 9)
  _check(m, p, xq, xkv, mask=attention.key_padding_mask(np.arange(S)[None].repeat(B, 0) < 4))


def test_query_fn_only_changes_the_queries():
  def query_fn(x, ctx):
    return nn.Dense(x.shape[-1], name='query_input')(jnp.concatenate([x, ctx], -1))

  m = attention.MultiHeadAttention(H, head_dim=HD, query_fn=query_fn)
  x, ctx = _x((B, T, D)), _x((B, T, 5), 2)
  p = _params(m, x, query_context=ctx)
  assert 'query_input' in p
  q_in = nn.Dense(D).apply({'params': p['query_input']}, jnp.concatenate([x, ctx], -1))
  plain = {k: v for k, v in p.items() if k != 'query_input'}
  np.testing.assert_allclose(m.apply({'params': p}, x, query_context=ctx),
                             np_attention(plain, q_in, x), atol=2e-5)
  with pytest.raises(ValueError, match='no query_fn'):
    attention.MultiHeadAttention(H).apply({'params': plain}, x, query_context=ctx)


def test_fused_qkv_equals_separate_projections():
  fused = attention.MultiHeadAttention(H, head_dim=HD, fused_qkv=True, names=('qkv', '', '', 'out'))
  x = _x((B, T, D))
  p = _params(fused, x)
  assert p['qkv']['kernel'].shape == (D, 3, H, HD)
  sep = {n: {'kernel': p['qkv']['kernel'][:, i], 'bias': p['qkv']['bias'][i]}
         for i, n in enumerate(('query', 'key', 'value'))}
  sep['out'] = p['out']
  np.testing.assert_allclose(fused.apply({'params': p}, x), np_attention(sep, x), atol=2e-5)


def test_torch_init_bounds_and_no_bias():
  m = attention.MultiHeadAttention(H, head_dim=HD, use_bias=False, torch_init=True,
                                   names=('to_q', 'to_k', 'to_v', 'to_out'))
  p = _params(m, _x((B, T, 64)))
  assert set(p) == {'to_q', 'to_k', 'to_v', 'to_out'} and 'bias' not in p['to_q']
  assert float(jnp.max(jnp.abs(p['to_q']['kernel']))) <= 1 / np.sqrt(64)
  assert float(jnp.max(jnp.abs(p['to_out']['kernel']))) <= 1 / np.sqrt(H * HD)
  assert float(jnp.max(jnp.abs(p['to_q']['kernel']))) > 0.8 / np.sqrt(64)


def test_attention_dropout_only_in_training():
  m = attention.MultiHeadAttention(H, dropout=0.5)
  x = _x((B, T, D))
  p = _params(m, x)
  ev = m.apply({'params': p}, x)
  np.testing.assert_allclose(ev, np_attention(p, x), atol=2e-5)
  tr = m.apply({'params': p}, x, train=True, rngs={'dropout': jax.random.key(1)})
  assert float(jnp.max(jnp.abs(tr - ev))) > 1e-3


def test_gradients():
  m = attention.MultiHeadAttention(2, head_dim=2, num_kv_heads=1, causal=True)
  x = _x((1, 3, 4))
  p = _params(m, x)
  bias = _x((1, 1, 3, 3), 7)
  f = lambda p, x, bias: m.apply({'params': p}, x, bias=bias)  # pylint: disable=unnecessary-lambda-assignment
  check_grads(f, (p, x, bias), order=1, modes=('rev',), atol=2e-2, rtol=2e-2, eps=1e-2)


def test_bad_configurations_are_named():
  x = _x((B, T, D))
  with pytest.raises(ValueError, match='not divisible by num_heads'):
    attention.MultiHeadAttention(5).init(jax.random.key(0), x)
  with pytest.raises(ValueError, match='num_kv_heads'):
    attention.MultiHeadAttention(4, num_kv_heads=3).init(jax.random.key(0), x)
  with pytest.raises(ValueError, match='self-attention only'):
    attention.MultiHeadAttention(4, decode=True).init(jax.random.key(0), x, _x((B, S, D)))


def test_key_valid_and_segment_ids_equal_explicit_masks():
  m = attention.MultiHeadAttention(H, head_dim=HD)
  x = _x((B, T, D))
  p = _params(m, x)
  valid = np.arange(T)[None] < np.array([[T], [5]])
  seg = np.array([[0, 0, 0, 1, 1, 1, 1], [0, 0, 1, 1, 1, 2, 2]])
  want = (seg[:, None, :, None] == seg[:, None, None, :]) & valid[:, None, None, :]
  _check(m, p, x, key_valid=jnp.asarray(valid), segment_ids=jnp.asarray(seg),
         ref_kw={'mask': want})


def test_cross_attention_with_rotary_keys():
  m = attention.MultiHeadAttention(H, head_dim=4)
  xq, xkv = _x((B, T, D)), _x((B, S, D), 1)
  p = _params(m, xq, xkv)
  rq = positional.rope_frequencies(jnp.broadcast_to(jnp.arange(T), (B, T)), 4)
  rk = positional.rope_frequencies(jnp.broadcast_to(jnp.arange(S) + 2, (B, S)), 4)
  _check(m, p, xq, xkv, rope=rq, rope_kv=rk)
