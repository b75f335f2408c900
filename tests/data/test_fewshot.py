"""jaxvision.data.fewshot: big_vision's k-shot sampler (nested over shots, seeded,
class-balanced), the class-balanced pool, and mean ± std over seeds."""

from __future__ import annotations

import numpy as np
import pytest

from jaxvision.data import fewshot


def test_fewshot_sampler_is_nested_balanced_and_seeded():
  labels = np.repeat(np.arange(4), 30)[np.random.default_rng(0).permutation(120)]
  one, five = (fewshot.fewshot_indices(labels, k, seed=3) for k in (1, 5))
  assert set(one) <= set(five)
  np.testing.assert_array_equal(np.bincount(labels[five]), [5, 5, 5, 5])
  assert not np.array_equal(five, fewshot.fewshot_indices(labels, 5, seed=4))
  np.testing.assert_array_equal(five, fewshot.fewshot_indices(labels, 5, seed=3))
  # big_vision's draw: default_rng(seed) permutes each class's indices in class order.
  rng = np.random.default_rng(3)
  expected = np.concatenate([rng.permutation(np.flatnonzero(labels == c))[:5]
                             for c in range(4)])
  np.testing.assert_array_equal(five, expected)
  with pytest.raises(ValueError, match='fewer than'):
    fewshot.fewshot_indices(labels, 31, seed=0)
  with pytest.raises(ValueError, match='shots must be >= 1'):
    fewshot.fewshot_indices(labels, 0, seed=0)
  assert fewshot.summarize({0: 0.5, 1: 0.7}) == pytest.approx(
      {'mean': 0.6, 'std': 0.1, 'num_seeds': 2})


def test_balanced_pool_keeps_per_class_examples_sorted():
  labels = np.repeat(np.arange(3), [10, 4, 7])
  pool = fewshot.balanced_pool(labels, 5)
  assert np.all(np.diff(pool) > 0)
  np.testing.assert_array_equal(np.bincount(labels[pool]), [5, 4, 5])
  np.testing.assert_array_equal(fewshot.balanced_pool(labels, 0), np.arange(21))
