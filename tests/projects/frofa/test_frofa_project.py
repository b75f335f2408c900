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
