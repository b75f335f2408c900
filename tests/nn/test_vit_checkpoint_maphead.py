"""A standalone MAP head's params (big_vision MAPHead: keys without 'MAPHead_0/') load
through `vit_checkpoint.load_big_vision_npz`, the loader of full ViTs, into a model with a
MAP head (FroFA's MAPClassifier, keys under 'MAPHead_0/') and back into a standalone
head; the loaded models compute the same pooled output."""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxvision.nn import vit
from jaxvision.nn import vit_checkpoint
from jaxvision.projects.frofa import model as frofa_model


def _random_like(tree, seed):
  rng = np.random.default_rng(seed)
  return jax.tree.map(lambda s: rng.normal(0, 0.2, s.shape).astype(np.float32), tree)


def test_standalone_map_head_loads_into_both_layouts(tmp_path):
  x = jnp.asarray(np.random.default_rng(0).normal(size=(3, 9, 16)), jnp.float32)
  head = vit.MAPHead(mlp_dim=32, num_heads=2)
  head_shapes = nn.meta.unbox(jax.eval_shape(lambda: head.init(jax.random.key(0), x)))['params']
  head_params = _random_like(head_shapes, 1)
  path = str(tmp_path / 'map_head.npz')
  vit_checkpoint.save_big_vision_npz(path, head_params)      # keys 'probe', 'MlpBlock_0/...'
  with np.load(path) as f:
    assert 'probe' in f.files and not any(k.startswith('MAPHead_0/') for k in f.files)

  clf = frofa_model.MAPClassifier(num_classes=4, num_heads=2, mlp_dim=32)
  clf_init = nn.meta.unbox(clf.init(jax.random.key(1), x))['params']
  loaded = vit_checkpoint.load_big_vision_npz(path, clf_init, dont_load=('head/.*',))
  pooled = clf.apply({'params': loaded}, x, prelogits=True)
  np.testing.assert_allclose(pooled, head.apply({'params': head_params}, x), atol=1e-6)
  np.testing.assert_array_equal(loaded['head']['kernel'], clf_init['head']['kernel'])

  # ... and a model's 'MAPHead_0/...' back into a standalone head.
  clf_path = str(tmp_path / 'clf.npz')
  vit_checkpoint.save_big_vision_npz(clf_path, loaded)
  back = vit_checkpoint.load_big_vision_npz(clf_path, head_shapes, dont_load=('head/.*',))
  np.testing.assert_allclose(head.apply({'params': back}, x), pooled, atol=1e-6)
  # A mismatch still names the keys.
  with pytest.raises(ValueError, match='missing keys'):
    vit_checkpoint.load_big_vision_npz(path, clf_init)
