"""Shared by the FroFA tests of a session: one cache root, and in it ONE tiny digits ViT
(2 steps, pretrained on classes 0-4 only) with its feature cache of classes 5-9 — the
transfer setting of `experiments/frofa/digits_fewshot.py:tiny,backbone=vit_transfer`,
built once and reused by the project and colab tests."""

import os

import pytest

from jaxvision.projects.frofa import data
from tests import helpers

TINY_TRANSFER = 'tiny,backbone=vit_transfer'


def _digits_fewshot_config(arg):
  path = os.path.join(helpers.REPO, 'experiments', 'frofa', 'digits_fewshot.py')
  namespace: dict = {}
  with open(path) as f:
    exec(compile(f.read(), path, 'exec'), namespace)  # pylint: disable=exec-used
  return namespace['get_config'](arg)


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
  return data.ensure_cache(config.input)
