"""Per-example correctness and softmax cross-entropy against scikit-learn."""

import numpy as np
import pytest
from sklearn.metrics import accuracy_score
from sklearn.metrics import log_loss

from jaxvision.metrics import classification


def test_matches_sklearn():
  rng = np.random.default_rng(0)
  logits = 3 * rng.normal(size=(50, 4)).astype(np.float32)
  labels = rng.integers(0, 4, 50)
  probs = np.exp(logits - logits.max(1, keepdims=True))
  probs /= probs.sum(1, keepdims=True)
  assert np.mean(classification.correct(logits, labels)) == pytest.approx(
      accuracy_score(labels, probs.argmax(1)))
  assert np.mean(classification.softmax_xent(logits, labels)) == pytest.approx(
      log_loss(labels, probs, labels=range(4)), rel=1e-5)
  # stable for huge logits
  assert float(classification.softmax_xent(np.array([[1e4, 0.0]]), np.array([1]))[0]) == \
      pytest.approx(1e4)
