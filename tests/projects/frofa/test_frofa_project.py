"""The FroFA project through the one binary: feature cache from a frozen (self-trained)
digits ViT, few-shot sampling, FroFA in the train step, evaluators."""

from __future__ import annotations

import os

import numpy as np
import pytest

from jaxvision import train
from jaxvision.data import feature_cache
from jaxvision.projects.frofa import data
from jaxvision.projects.frofa import fewshot
from tests import helpers


def _get_config(arg):
  path = os.path.join(helpers.REPO, 'experiments', 'frofa', 'digits_fewshot.py')
  namespace: dict = {}
  with open(path) as f:
    exec(compile(f.read(), path, 'exec'), namespace)  # pylint: disable=exec-used
  return namespace['get_config'](arg)


def test_fewshot_sampler_is_nested_balanced_and_seeded():
  labels = np.repeat(np.arange(4), 30)[np.random.default_rng(0).permutation(120)]
  one, five = (fewshot.fewshot_indices(labels, k, seed=3) for k in (1, 5))
  assert set(one) <= set(five)
  np.testing.assert_array_equal(np.bincount(labels[five]), [5, 5, 5, 5])
  assert not np.array_equal(five, fewshot.fewshot_indices(labels, 5, seed=4))
  np.testing.assert_array_equal(five, fewshot.fewshot_indices(labels, 5, seed=3))
  with pytest.raises(ValueError, match='fewer than'):
    fewshot.fewshot_indices(labels, 31, seed=0)
  assert fewshot.summarize({0: 0.5, 1: 0.7}) == pytest.approx(
      {'mean': 0.6, 'std': 0.1, 'num_seeds': 2})


def test_tiny_config_trains_on_cached_features(frofa_cache_root, tmp_path):
  config = _get_config('tiny,shots=1,frofa=bc2_pc')
  config.input.cache_root = frofa_cache_root
  config.total_steps = 3
  out = train.train(config, str(tmp_path / 'run'))
  assert sorted(out['train']) == [1, 2, 3]
  final = out['eval'][3]
  assert 0.0 <= final['test/accuracy'] <= 1.0 and final['test/count'] == 360
  assert final['val/count'] == 180 and 0.1 < final['linear_probe/accuracy'] <= 1.0
  # The cache holds every digits split as (4, 4, 16) token grids of the tiny ViT.
  directory = data.cache_dir(config.input)
  meta = feature_cache.read_meta(directory)
  assert meta['feature_shape'] == [4, 4, 16]
  assert {k: v['num_examples'] for k, v in meta['splits'].items()} == {
      'train': 1257, 'val': 180, 'test': 360}
  # The 1-shot training set: one example of each class from the cached train split.
  train_set = data.fewshot_train(config.input)
  np.testing.assert_array_equal(np.sort(train_set['label']), np.arange(10))


def test_big_vision_npz_backbone_gives_the_vits_token_grid(tmp_path):
  """A big_vision-layout .npz (written here from a random ViT) -> (B, h, w, C) tokens."""
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  import ml_collections  # pylint: disable=g-import-not-at-top
  from jaxvision.nn import vit  # pylint: disable=g-import-not-at-top
  from jaxvision.nn import vit_checkpoint  # pylint: disable=g-import-not-at-top
  from jaxvision.projects.frofa import backbones  # pylint: disable=g-import-not-at-top
  model = vit.make_vit('Ti/16', num_classes=None, pool_type='none')
  params = model.init(jax.random.key(0), jnp.zeros((1, 32, 32, 3)), train=False)['params']
  path = str(tmp_path / 'ti16.npz')
  vit_checkpoint.save_big_vision_npz(path, params)
  cfg = ml_collections.ConfigDict(dict(backbones.BACKBONE_DEFAULTS))
  cfg.update(kind='vit_npz', npz=path, variant='Ti/16', image_size=(32, 32))
  preprocess, feature_fn, info = backbones.make_backbone(cfg, str(tmp_path))
  rng = np.random.default_rng(0)
  images = np.stack([preprocess(rng.integers(0, 256, (20, 24, 3), np.uint8)) for _ in range(2)])
  assert images.shape == (2, 32, 32, 3) and images.min() >= -1 and images.max() <= 1
  feats = np.asarray(feature_fn(images))
  _, out = model.apply({'params': params}, images, train=False)
  np.testing.assert_allclose(feats, np.asarray(out['encoded']).reshape(2, 2, 2, 192), atol=1e-5)
  assert info['kind'] == 'vit_npz'
