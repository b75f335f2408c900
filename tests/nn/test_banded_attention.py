"""Banded attention equals dense attention with the band mask, at cost linear in T."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxvision.nn import attention
from jaxvision.nn import banded_attention as ba


def _qkv(t, h=4, k=4, d=8, b=2, seed=0):
  rng = np.random.default_rng(seed)
  f = lambda *s: jnp.asarray(rng.normal(size=s), jnp.float32)  # pylint: disable=unnecessary-lambda-assignment
  return f(b, t, h, d), f(b, t, k, d), f(b, t, k, d)


def _dense(q, k, v, window, causal=False, valid=None, seg=None):
  t = q.shape[1]
  pos = np.arange(t)
  mask = attention.band_mask(pos, pos, window, causal)[None, None]
  if valid is not None:
    mask = mask & attention.key_padding_mask(valid)
  if seg is not None:
    mask = mask & (seg[:, :, None] == seg[:, None, :])[:, None]
  return attention.dot_product_attention(q, k, v, mask=jnp.asarray(mask))


@pytest.mark.parametrize('t,window,causal,block', [(13, 3, False, None), (13, 3, True, None),
                                                   (16, 4, False, 4), (9, 0, False, None),
                                                   (11, 2, False, 5), (5, 8, False, None)])
def test_banded_equals_dense(t, window, causal, block):
  q, k, v = _qkv(t)
  got = ba.banded_dot_product_attention(q, k, v, window, causal=causal, block_size=block)
  np.testing.assert_allclose(got, _dense(q, k, v, window, causal), atol=1e-5)


def test_padding_segments_and_gqa():
  t = 17
  q, k, v = _qkv(t, h=4, k=2)
  valid = np.ones((2, t), bool)
  valid[0, 12:] = False
  seg = np.array([[0] * 6 + [1] * 6 + [-1] * 5, [0] * 4 + [1] * 9 + [2] * 4])
  got = ba.banded_dot_product_attention(q, k, v, 3, kv_valid=valid, segment_ids=seg)
  want = _dense(q, k, v, 3, valid=valid, seg=seg)
  # Fully masked rows (padded queries) are arbitrary in both; compare valid queries.
  np.testing.assert_allclose(np.asarray(got)[valid], np.asarray(want)[valid], atol=1e-5)


def test_module_banded_equals_dense_module():
  x = jnp.asarray(np.random.default_rng(1).normal(size=(2, 19, 16)), jnp.float32)
  valid = jnp.asarray(np.arange(19)[None] < np.array([[19], [15]]))
  dense = attention.MultiHeadAttention(4, window=3)
  band = attention.MultiHeadAttention(4, window=3, banded=True)
  params = dense.init(jax.random.key(0), x)
  got = band.apply(params, x, key_valid=valid)
  want = dense.apply(params, x, key_valid=valid)
  np.testing.assert_allclose(np.asarray(got)[np.asarray(valid)],
                             np.asarray(want)[np.asarray(valid)], atol=1e-5)
  with pytest.raises(ValueError, match='not dense masks'):
    band.apply(params, x, mask=jnp.ones((19, 19), bool))
  with pytest.raises(ValueError, match='needs a window'):
    attention.MultiHeadAttention(4, banded=True).apply(params, x)


def test_cost_grows_linearly_with_length():
  def flops(t, banded):
    q, k, v = (jax.ShapeDtypeStruct((1, t, 2, 8), jnp.float32),) * 3
    fn = ((lambda q, k, v: ba.banded_dot_product_attention(q, k, v, 16)) if banded
          else (lambda q, k, v: _dense(q, k, v, 16)))
    return jax.jit(fn).lower(q, k, v).compile().cost_analysis()['flops']

  ratio_banded = flops(1024, True) / flops(256, True)
  ratio_dense = flops(1024, False) / flops(256, False)
  assert 3.5 < ratio_banded < 4.5, ratio_banded     # x4 length -> x4 cost
  assert ratio_dense > 12, ratio_dense              # quadratic


def test_bad_input_is_named():
  q, k, v = _qkv(8)
  with pytest.raises(ValueError, match='window >= 0'):
    ba.banded_dot_product_attention(q, k, v, -1)
  with pytest.raises(ValueError, match='smaller than the window'):
    ba.banded_dot_product_attention(q, k, v, 4, block_size=2)
  with pytest.raises(ValueError, match='self-attention'):
    ba.banded_dot_product_attention(q, k[:, :5], v[:, :5], 2)
