"""Heads: the MAP head vs big_vision's MAPHead written with stock flax modules, and the
closed-form linear probe vs numpy.linalg.lstsq on the same regularised problem."""

from __future__ import annotations

from typing import Optional

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxvision.metrics import linear_probe
from jaxvision.projects.frofa import model as model_lib


class _BigVisionMlpBlock(nn.Module):
  mlp_dim: Optional[int] = None

  @nn.compact
  def __call__(self, x):
    inits = dict(kernel_init=nn.initializers.xavier_uniform(),
                 bias_init=nn.initializers.normal(stddev=1e-6))
    d = x.shape[-1]
    x = nn.gelu(nn.Dense(self.mlp_dim or 4 * d, **inits)(x))
    return nn.Dense(d, **inits)(x)


class _BigVisionMAPHead(nn.Module):
  """big_vision/models/vit.py MAPHead, built from flax's own attention and LayerNorm."""
  mlp_dim: Optional[int] = None
  num_heads: int = 12

  @nn.compact
  def __call__(self, x):
    n, _, d = x.shape
    probe = self.param('probe', nn.initializers.xavier_uniform(), (1, 1, d), x.dtype)
    probe = jnp.tile(probe, [n, 1, 1])
    x = nn.MultiHeadDotProductAttention(
        num_heads=self.num_heads, kernel_init=nn.initializers.xavier_uniform())(probe, x)
    y = nn.LayerNorm()(x)
    x = x + _BigVisionMlpBlock(mlp_dim=self.mlp_dim, name='MlpBlock_0')(y)  # class MlpBlock
    return x[:, 0]


class _BigVisionHead(nn.Module):
  num_classes: int
  num_heads: int

  @nn.compact
  def __call__(self, x):
    x = _BigVisionMAPHead(num_heads=self.num_heads, name='MAPHead_0')(x)
    return nn.Dense(self.num_classes, name='head')(x)


def _shapes(tree):
  return jax.tree_util.tree_map(lambda a: tuple(a.shape), nn.meta.unbox(tree))


def test_map_classifier_matches_big_vision_layout_and_output():
  feats = jax.random.normal(jax.random.key(0), (3, 4, 4, 32))
  tokens = feats.reshape(3, 16, 32)
  ours = model_lib.MAPClassifier(num_classes=7, num_heads=4)
  theirs = _BigVisionHead(num_classes=7, num_heads=4)
  ref_params = jax.jit(theirs.init)(jax.random.key(1), tokens)['params']
  our_params = nn.meta.unbox(jax.jit(ours.init)(jax.random.key(2), feats)['params'])
  assert _shapes(our_params) == _shapes(ref_params)
  # Our head on big_vision's parameters computes big_vision's function (grid or tokens);
  # with the zero-initialised classifier (big_vision's head_zeroinit) it outputs 0.
  ref_params = jax.tree_util.tree_map(lambda a: a + 0.05, ref_params)   # non-zero head
  expect = jax.jit(theirs.apply)({'params': ref_params}, tokens)
  on_grid, on_tokens, at_init = jax.jit(lambda p, q: (
      ours.apply({'params': p}, feats), ours.apply({'params': p}, tokens),
      ours.apply({'params': q}, feats)))(ref_params, our_params)
  np.testing.assert_allclose(on_grid, expect, atol=1e-5)
  np.testing.assert_allclose(on_tokens, expect, atol=1e-5)
  np.testing.assert_array_equal(at_init, 0.0)


def test_gap_pool_and_bad_inputs():
  m = model_lib.MAPClassifier(num_classes=3, pool='gap', head_zeroinit=False)
  feats = jax.random.normal(jax.random.key(0), (2, 4, 4, 8))
  params = jax.jit(m.init)(jax.random.key(1), feats)['params']
  assert set(params) == {'head'}
  w = jax.tree_util.tree_map(np.asarray, nn.meta.unbox(params)['head'])
  np.testing.assert_allclose(jax.jit(m.apply)({'params': params}, feats),
                             np.asarray(feats).mean((1, 2)) @ w['kernel'] + w['bias'],
                             atol=1e-5)
  with pytest.raises(ValueError, match='expected features'):
    jax.eval_shape(m.init, jax.random.key(1), jnp.zeros((2, 8)))


def _lstsq_reference(x, y, k, l2):
  """The same regularised problem, solved as an augmented least-squares system."""
  mean, std = x.mean(0), x.std(0) + 1e-5
  xd = np.concatenate([(x - mean) / std, np.full((len(x), 1), 100.0)], 1)
  t = 2.0 * np.eye(k)[y] - 1.0
  d = xd.shape[1]
  a = np.concatenate([xd, np.sqrt(l2) * np.eye(d)], 0)
  b = np.concatenate([t, np.zeros((d, k))], 0)
  w = np.linalg.lstsq(a, b, rcond=None)[0]
  return w, mean, std


@pytest.mark.parametrize('n,d', [(60, 12), (15, 40)])   # both eigendecomposition branches
@pytest.mark.parametrize('l2', [1e-3, 1.0, 1000.0])
def test_linear_probe_equals_lstsq(n, d, l2):
  rng = np.random.default_rng(0)
  x = rng.normal(size=(n, d)) * rng.uniform(0.5, 3, d) + rng.normal(size=d)
  y = np.arange(n) % 5
  with jax.enable_x64():
    cache = linear_probe.fit(x.astype(np.float64), y, 5)
    w = np.asarray(linear_probe.weights(cache, l2))
  w_ref, mean, std = _lstsq_reference(x, y, 5, l2)
  np.testing.assert_allclose(w, w_ref, rtol=1e-6, atol=1e-8)
  x_test = rng.normal(size=(30, d))
  xd_test = np.concatenate([(x_test - mean) / std, np.full((30, 1), 100.0)], 1)
  y_test = np.argmax(xd_test @ w_ref, 1)
  cache32 = linear_probe.fit(x.astype(np.float32), y, 5)
  assert linear_probe.accuracy(cache32, x_test, y_test, l2) >= 0.9


def test_linear_probe_separates_and_rejects_bad_input():
  rng = np.random.default_rng(1)
  centers = rng.normal(size=(4, 16)) * 4
  y = np.repeat(np.arange(4), 5)
  x = centers[y] + rng.normal(size=(20, 16))
  cache = linear_probe.fit(x, y, 4)
  y_test = np.repeat(np.arange(4), 25)
  assert linear_probe.accuracy(cache, centers[y_test] + rng.normal(size=(100, 16)),
                               y_test, 1.0) > 0.95
  with pytest.raises(ValueError, match='NaN'):
    linear_probe.fit(np.full((4, 3), np.nan), np.zeros(4, int), 2)
  with pytest.raises(ValueError, match=r'\(N, D\)'):
    linear_probe.fit(np.zeros((4, 3, 2)), np.zeros(4, int), 2)
  with pytest.raises(ValueError, match='labels must be in'):
    linear_probe.fit(np.zeros((4, 3)), np.array([0, 1, 2, 5]), 3)


def test_replicated_heads_are_independent_map_classifiers():
  """Replica r of ReplicatedClassifier (vmap or scan) is MAPClassifier with params[r]."""
  head = dict(num_classes=5, num_heads=2, head_zeroinit=False)
  x = jax.random.normal(jax.random.key(1), (4, 3, 2, 2, 8))
  vm = model_lib.ReplicatedClassifier(3, head, impl='vmap')
  sc = model_lib.ReplicatedClassifier(3, head, impl='scan')
  params = nn.meta.unbox(vm.init(jax.random.key(0), x)['params'])
  single = model_lib.MAPClassifier(**head)

  def outputs(p):
    return (vm.apply({'params': p}, x), sc.apply({'params': p}, x),
            vm.apply({'params': p}, x[:, 0], shared=True),
            sc.apply({'params': p}, x[:, 0], shared=True),
            vm.apply({'params': p}, x, prelogits=True))
  out_vm, out_sc, sh_vm, sh_sc, pre = jax.jit(outputs)(params)
  assert out_vm.shape == (4, 3, 5) and pre.shape == (4, 3, 8)
  for r in range(3):
    p_r = jax.tree.map(lambda a, r=r: a[r], params['replicas'])
    ref, ref_shared = jax.jit(lambda p, a, b: (single.apply({'params': p}, a),
                                               single.apply({'params': p}, b)))(
                                                   p_r, x[:, r], x[:, 0])
    for got in (out_vm, out_sc):
      np.testing.assert_allclose(got[:, r], ref, atol=1e-5)
    for got in (sh_vm, sh_sc):
      np.testing.assert_allclose(got[:, r], ref_shared, atol=1e-5)
  assert not np.allclose(params['replicas']['head']['kernel'][0],
                         params['replicas']['head']['kernel'][1])
  with pytest.raises(ValueError, match='replicated features must be'):
    vm.apply({'params': params}, x[:, :2])
