"""Runs every code cell of colabs/couplap.ipynb (tiny settings) in one namespace."""

from __future__ import annotations

import os

import matplotlib
import nbformat

from tests import helpers

matplotlib.use('Agg')


def test_colab_runs_top_to_bottom(monkeypatch, tmp_path):
  monkeypatch.setenv('COUPLAP_COLAB_TINY', '1')
  monkeypatch.setenv('JAXVISION_CACHE', str(tmp_path))
  nb = nbformat.read(os.path.join(helpers.REPO, 'colabs', 'couplap.ipynb'), as_version=4)
  code = [c for c in nb.cells if c.cell_type == 'code']
  assert all(not c.get('outputs') for c in code), 'commit the notebook with outputs stripped'
  namespace: dict = {}
  for cell in code:
    exec(compile(cell.source, 'couplap.ipynb', 'exec'), namespace)  # pylint: disable=exec-used
  assert set(namespace['res']) == {'coupled', 'euclidean'}
  assert 0.0 <= namespace['res']['coupled']['au_pro'] <= 1.0
