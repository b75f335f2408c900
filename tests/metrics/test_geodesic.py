"""Geodesic error and PCK against direct numpy on a shape with known geodesics."""

import numpy as np
import pytest

from jaxvision.metrics import geodesic


def _circle_geodesics(n):
  """Vertices on a unit-perimeter circle: geodesic = shorter arc length."""
  i = np.arange(n)
  d = np.abs(i[:, None] - i[None, :]) / n
  return np.minimum(d, 1 - d)


def test_errors_pck_and_auc_match_numpy():
  n = 40
  dist = _circle_geodesics(n)
  rng = np.random.default_rng(0)
  truth = rng.permutation(n)
  pred = (truth + rng.integers(-3, 4, n)) % n
  out = geodesic.geodesic_error(dist, pred, truth, np.linspace(0, 0.25, 26))
  err = np.array([dist[p, t] for p, t in zip(pred, truth)])
  np.testing.assert_allclose(err, np.abs(((pred - truth + n // 2) % n) - n // 2) / n, atol=1e-7)
  assert out['mean_error'] == pytest.approx(err.mean(), abs=1e-6)
  curve = [(err <= t + 1e-7).mean() for t in np.linspace(0, 0.25, 26)]
  np.testing.assert_allclose(out['pck'], curve)
  assert out['auc'] == pytest.approx(np.trapezoid(curve, np.linspace(0, 0.25, 26)) / 0.25)


def test_exact_map_and_batched_shapes():
  dist = _circle_geodesics(10)
  exact = geodesic.geodesic_error(dist, np.arange(10), np.arange(10), np.linspace(0, 0.1, 5))
  assert exact['mean_error'] == 0 and exact['auc'] == pytest.approx(1.0)
  batched = np.asarray(geodesic.vertex_errors(np.stack([dist, 2 * dist]),
                                              np.array([[1, 2], [1, 2]]),
                                              np.array([[0, 2], [0, 2]])))
  np.testing.assert_allclose(batched, [[0.1, 0.0], [0.2, 0.0]], atol=1e-7)
  counts = geodesic.pck_counts(np.array([0.0, 0.1, 0.3]), [0.1, 0.2], weights=[1, 1, 0])
  np.testing.assert_allclose(counts, [2, 2])
  with pytest.raises(ValueError, match='differ'):
    geodesic.vertex_errors(dist, np.arange(3), np.arange(4))
  with pytest.raises(ValueError, match='increasing'):
    geodesic.pck_auc([0.0, 0.0], [1.0, 1.0])
