"""jaxvision.metrics.linear_probe: big_vision's closed-form few-shot probe against a
direct numpy ridge regression on the same whitened, bias-augmented design matrix."""

import jax
import numpy as np
import pytest

from jaxvision.metrics import linear_probe as lp


def _ridge(x, y, k, l2, query):
  mean, std = x.mean(0, keepdims=True), x.std(0, keepdims=True) + lp.STD_EPS
  design = lambda z: np.pad((z - mean) / std, ((0, 0), (0, 1)), constant_values=lp.BIAS_CONSTANT)
  xd = design(x)
  t = 2.0 * np.eye(k)[y] - 1.0
  w = np.linalg.solve(xd.T @ xd + l2 * np.eye(xd.shape[1]), xd.T @ t)
  return design(query) @ w


@pytest.mark.parametrize('n', [40, 6])   # n >= d (primal) and n < d (dual) branches
def test_scores_equal_numpy_ridge_regression(n):
  with jax.enable_x64():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(n, 9)), rng.integers(0, 3, n)
    query = rng.normal(size=(5, 9))
    cache = lp.fit(x, y, 3)
    for l2 in (1e-3, 1.0, 100.0):
      got = np.asarray(lp.predict(cache, lp.weights(cache, l2), query))
      np.testing.assert_allclose(got, _ridge(x, y, 3, l2, query), rtol=1e-6, atol=1e-6)


def test_accuracy_on_separable_classes_and_errors():
  rng = np.random.default_rng(1)
  centres = rng.normal(size=(4, 6)) * 10
  y = np.repeat(np.arange(4), 10)
  x = centres[y] + rng.normal(size=(40, 6))
  cache = lp.fit(x.astype(np.float32), y, 4)
  assert lp.accuracy(cache, x, y, 1e-2) == 1.0
  assert lp.accuracy(cache, x, (y + 1) % 4, 1e-2) == 0.0
  with pytest.raises(ValueError, match=r'labels must be in \[0, 3\)'):
    lp.fit(x, y, 3)
  with pytest.raises(ValueError, match='must be \\(N, D\\)'):
    lp.fit(x[:, :, None], y, 4)
  x_nan = x.copy()
  x_nan[0, 0] = np.nan
  with pytest.raises(ValueError, match='NaN or inf'):
    lp.fit(x_nan, y, 4)
