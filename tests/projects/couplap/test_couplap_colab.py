"""Runs every code cell of colabs/couplap.ipynb (tiny settings) in one namespace."""

from __future__ import annotations


import matplotlib

from tests import helpers

matplotlib.use('Agg')


def test_colab_runs_top_to_bottom(monkeypatch, tmp_path):
  monkeypatch.setenv('COUPLAP_COLAB_TINY', '1')
  monkeypatch.setenv('JAXVISION_CACHE', str(tmp_path))
  namespace = helpers.run_colab('couplap')
  assert set(namespace['res']) == {'coupled', 'euclidean'}
  assert 0.0 <= namespace['res']['coupled']['au_pro'] <= 1.0
