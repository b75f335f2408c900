"""Every config under experiments/ builds and trains 2 steps in its tiny mode.

Configs whose data is a tfds dataset that cannot exist here (ImageNet, ...) run on
`tfds.testing.mock_data`: random examples with the real feature spec — a shape test of
the real pipeline, not evidence that the method works.
"""

from __future__ import annotations

import glob
import os

import ml_collections
import pytest
import tensorflow_datasets as tfds

from jaxvision import train
from tests import helpers

CONFIGS = sorted(glob.glob(os.path.join(helpers.REPO, 'experiments', '*', '*.py')))
EMBEDDED = ('digits',)   # datasets that ship with installed packages


def _get_config(path: str, arg: str) -> ml_collections.ConfigDict:
  namespace: dict = {}
  with open(path) as f:
    exec(compile(f.read(), path, 'exec'), namespace)  # pylint: disable=exec-used
  return namespace['get_config'](arg)


def _train_earlier_stage(config, tmp_path) -> None:
  """Multi-stage configs: trains the run an experiment starts from (FroFA's digits ViT
  backbone, whose missing run is an error naming this very command)."""
  backbone = config.get('input', {}).get('backbone', None)
  if config.project == 'frofa' and backbone.kind == 'vit_workdir' and not backbone.workdir:
    from jaxvision.projects.frofa import backbones  # pylint: disable=g-import-not-at-top
    config.input.cache_root = str(tmp_path / 'cache')
    stage = _get_config(os.path.join(helpers.REPO, backbones.DIGITS_VIT_CONFIG),
                        backbone.train_arg or None)
    train.train(stage, backbones.digits_vit_workdir(backbone, config.input.cache_root))


def test_there_are_configs():
  assert CONFIGS


@pytest.mark.parametrize('path', CONFIGS, ids=lambda p: os.path.relpath(p, helpers.REPO))
def test_config_trains_two_steps_in_tiny_mode(path, tmp_path):
  config = _get_config(path, 'tiny')
  full = _get_config(path, None)
  if full.total_steps == 0:   # an evaluate-only method (nothing to learn): tiny evaluates
    assert config.total_steps == 0 and config.to_dict() != full.to_dict()
    assert train.train(config, str(tmp_path))['eval'], 'the tiny run evaluated nothing'
    return
  assert full.total_steps > config.total_steps  # the real config is not the tiny one
  config.total_steps = 2
  _train_earlier_stage(config, tmp_path)
  dataset = config.get('input', {}).get('dataset', None)
  if dataset is None or dataset in EMBEDDED:
    out = train.train(config, str(tmp_path))
  else:
    with tfds.testing.mock_data(num_examples=16, policy=tfds.testing.MockPolicy.USE_CODE):
      out = train.train(config, str(tmp_path))
  assert sorted(out['train'])[-1] == 2
  assert out['eval'], 'the tiny run evaluated nothing'
