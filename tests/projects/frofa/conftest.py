"""Shared by the FroFA tests of a session: one cache root, and in it ONE tiny digits ViT
(2 steps, pretrained on classes 0-4 only, trained through the binary's `train.train`)
with its feature cache of classes 5-9 — the transfer setting of
`experiments/frofa/digits_fewshot.py:tiny,backbone=vit_transfer`, built once and reused
by the project, study and colab tests."""

import os

from ml_collections.config_flags import config_flags
import pytest

from jaxvision import train
from jaxvision.projects.frofa import backbones
from jaxvision.projects.frofa import data
from tests import helpers

TINY_TRANSFER = 'tiny,backbone=vit_transfer'


def load_experiment(relpath: str, arg: str | None = None):
  """get_config(arg) of an experiment file, parsed as the binary's --config flag does."""
  spec = os.path.join(helpers.REPO, relpath) + (f':{arg}' if arg else '')
  return config_flags.ConfigFileFlagParser(name='config').parse(spec)


def _digits_fewshot_config(arg):
  return load_experiment('experiments/frofa/digits_fewshot.py', arg)


def train_backbone(input_cfg) -> str:
  """Trains the digits ViT backbone `input_cfg.backbone` names, as its command says."""
  root = data.cache_root(input_cfg)
  workdir = backbones.digits_vit_workdir(input_cfg.backbone, root)
  train.train(load_experiment(backbones.DIGITS_VIT_CONFIG, input_cfg.backbone.train_arg),
              workdir)
  return workdir


@pytest.fixture(scope='session')
def fewshot_config():
  """get_config of experiments/frofa/digits_fewshot.py."""
  return _digits_fewshot_config


@pytest.fixture(scope='session')
def frofa_cache_root(tmp_path_factory):
  return str(tmp_path_factory.mktemp('frofa_cache'))


@pytest.fixture(scope='session')
def tiny_transfer_cache(frofa_cache_root):
  """Trains the tiny backbone and caches its features once; returns the cache dir."""
  config = _digits_fewshot_config(TINY_TRANSFER)
  config.input.cache_root = frofa_cache_root
  train_backbone(config.input)
  return data.ensure_cache(config.input)
