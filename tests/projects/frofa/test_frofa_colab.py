"""colabs/frofa.ipynb runs top to bottom in its tiny setting (every code cell, one namespace),
on the session's tiny transfer backbone and feature cache (conftest.py)."""

from __future__ import annotations

import os

import matplotlib
import pytest

from tests import helpers

matplotlib.use('Agg')


def test_colab_runs(frofa_cache_root, tiny_transfer_cache, monkeypatch):
  monkeypatch.setenv('JAXVISION_COLAB_TINY', '1')
  monkeypatch.setenv('JAXVISION_CACHE', frofa_cache_root)
  namespace = helpers.run_colab('frofa')
  assert namespace['config'].input.num_classes == 5
  assert os.path.samefile(namespace['data'].cache_dir(namespace['config'].input),
                          tiny_transfer_cache)
  assert len(namespace['augmented']) == 8
  results = namespace['results']['methods']
  assert set(results) == {'none', 'brightness_c2', 'linear_probe', 'linear_probe_bv'}
  assert 0.0 <= results['none'][1]['test']['mean'] <= 1.0
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  plt.close('all')
