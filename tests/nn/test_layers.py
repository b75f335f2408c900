"""jaxvision.nn.layers: Dense (N-d kernels, PyTorch init), LayerNorm, Mlp, boxing."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxvision.nn import layers


def test_dense_contracts_the_last_in_dims_like_numpy():
  x = jax.random.normal(jax.random.key(0), (2, 3, 4, 5))
  m = layers.Dense((6, 7), in_dims=2, kernel_axes=('a', 'b', 'c', 'd'),
                   bias_init=nn.initializers.normal(1.0))
  v = m.init(jax.random.key(1), x)
  k, b = nn.meta.unbox(v['params']['kernel']), nn.meta.unbox(v['params']['bias'])
  assert k.shape == (4, 5, 6, 7) and b.shape == (6, 7)
  want = np.einsum('nthw,hwij->ntij', np.asarray(x, np.float64), np.asarray(k, np.float64)) + b
  np.testing.assert_allclose(m.apply(v, x), want, rtol=1e-5, atol=1e-5)
  # The N-d kernel holds the values a 2-D Dense draws for the flat (20, 42) matrix.
  flat = layers.Dense(42, kernel_axes=('a', 'b')).init(jax.random.key(1), x.reshape(2, 3, 20))
  np.testing.assert_array_equal(nn.meta.unbox(flat['params']['kernel']), k.reshape(20, 42))
  assert v['params']['kernel'].names == ('a', 'b', 'c', 'd')
  assert v['params']['bias'].names == ('c', 'd')
  with pytest.raises(ValueError, match='must name 2 input and 2 feature dims'):
    layers.Dense((6, 7), in_dims=2, kernel_axes=('a', 'b')).init(jax.random.key(1), x)


def test_torch_linear_init_is_uniform_within_one_over_sqrt_fan_in():
  x = jnp.zeros((1, 400))
  p = nn.meta.unbox(layers.TorchLinear(300).init(jax.random.key(0), x)['params'])
  bound = 1 / np.sqrt(400)
  for w in (p['kernel'], p['bias']):
    w = np.asarray(w)
    assert np.abs(w).max() <= bound and np.abs(w).max() > 0.98 * bound
    # U(-a, a) has variance a^2 / 3.
    assert np.var(w) == pytest.approx(bound ** 2 / 3, rel=0.1 if w.size > 1000 else 0.3)


def test_bfloat16_matmul_keeps_float32_params():
  x = jax.random.normal(jax.random.key(0), (3, 8))
  m = layers.Dense(4, dtype_mm='bfloat16')
  v = m.init(jax.random.key(1), x)
  assert nn.meta.unbox(v['params']['kernel']).dtype == jnp.float32
  y = m.apply(v, x)
  assert y.dtype == jnp.bfloat16
  np.testing.assert_allclose(np.asarray(y, np.float32),
                             layers.Dense(4).apply(v, x), rtol=0.05, atol=0.05)


def test_layer_norm_normalises_and_is_boxed_on_norm():
  x = jax.random.normal(jax.random.key(0), (4, 16)) * 3 + 2
  ln = layers.layer_norm(eps=1e-5)
  v = ln.init(jax.random.key(0), x)
  assert v['params']['scale'].names == ('norm',)
  y = np.asarray(ln.apply(v, x), np.float64)
  xn = np.asarray(x, np.float64)
  want = (xn - xn.mean(-1, keepdims=True)) / np.sqrt(xn.var(-1, keepdims=True) + 1e-5)
  np.testing.assert_allclose(y, want, atol=1e-5)


def test_mlp_is_dense_activation_dense_and_drops_only_in_training():
  x = jax.random.normal(jax.random.key(0), (2, 5, 8))
  m = layers.Mlp(hidden=12, activation='relu', dropout=0.5)
  v = m.init(jax.random.key(1), x)
  p = nn.meta.unbox(v['params'])
  h = np.maximum(np.asarray(x) @ p['Dense_0']['kernel'] + p['Dense_0']['bias'], 0)
  want = h @ p['Dense_1']['kernel'] + p['Dense_1']['bias']
  np.testing.assert_allclose(m.apply(v, x), want, rtol=1e-5, atol=1e-5)
  trained = m.apply(v, x, train=True, rngs={'dropout': jax.random.key(2)})
  assert not np.allclose(trained, want)
  assert layers.Mlp(out_features=3).apply(
      layers.Mlp(out_features=3).init(jax.random.key(0), x), x).shape == (2, 5, 3)
  with pytest.raises(ValueError, match="unknown activation 'swish'"):
    layers.activation('swish')


def test_activations_match_their_closed_forms():
  x = np.linspace(-4, 4, 101)
  from scipy.special import erf  # pylint: disable=g-import-not-at-top
  np.testing.assert_allclose(layers.activation('gelu')(x), 0.5 * x * (1 + erf(x / np.sqrt(2))),
                             atol=1e-6)
  np.testing.assert_allclose(layers.activation('quick_gelu')(x), x / (1 + np.exp(-1.702 * x)),
                             atol=1e-6)
