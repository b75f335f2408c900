"""Runs every code cell of colabs/hybrid_fmaps.ipynb (tiny settings) in one namespace,
and the pictures' input checks."""

from __future__ import annotations


import matplotlib
import numpy as np
import pytest

from tests import helpers

matplotlib.use('Agg')

from jaxvision.projects.hybrid_fmaps import pictures  # pylint: disable=g-import-not-at-top,wrong-import-position


def test_colab_runs_top_to_bottom(monkeypatch, tmp_path):
  monkeypatch.setenv('HFM_COLAB_TINY', '1')
  monkeypatch.setenv('JAXVISION_CACHE', str(tmp_path))
  namespace = helpers.run_colab('hybrid_fmaps')
  ex = namespace['ex']
  assert set(ex['maps']) == {'lbo', 'hybrid', 'truth'}
  # the true map is exact up to the coarse sampling (README: ~3 on body_00 -> body_01)
  assert ex['errors']['truth'] < 10.0
  assert all(np.isfinite(v) and v >= 0 for v in ex['errors'].values())
  assert len(namespace['fig'].axes) == 4      # source + the three transferred maps


def test_coordinate_colors_span_the_unit_cube():
  c = pictures.coordinate_colors(np.array([[0.0, 1, 2], [1, 3, 2], [0.5, 2, 2]]))
  np.testing.assert_allclose(c, [[0, 0, 0], [1, 1, 0], [0.5, 0.5, 0]])


def test_draw_mesh_refuses_bad_input():
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  ax = plt.figure().add_subplot(projection='3d')
  v, f = np.eye(3), np.array([[0, 1, 2]])
  with pytest.raises(ValueError, match='exactly one'):
    pictures.draw_mesh(ax, v, f)
  with pytest.raises(ValueError, match=r'values: expected \(3,\)'):
    pictures.draw_mesh(ax, v, f, values=np.zeros(4))
  with pytest.raises(ValueError, match='up='):
    pictures.draw_mesh(ax, v, f, values=np.zeros(3), up='w')
  plt.close('all')
