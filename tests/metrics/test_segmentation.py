"""Confusion-matrix accumulation and mIoU against scikit-learn."""

import numpy as np
import pytest
from sklearn.metrics import confusion_matrix as sk_confusion
from sklearn.metrics import jaccard_score

from jaxvision.metrics import segmentation


def test_batches_accumulate_to_sklearn_confusion_and_jaccard():
  rng = np.random.default_rng(0)
  k = 5
  labels = rng.integers(0, k, (6, 7, 9))
  labels[rng.random(labels.shape) < 0.1] = 255       # ignored pixels
  preds = np.where(rng.random(labels.shape) < 0.6, labels % k, rng.integers(0, k, labels.shape))
  weights = np.array([1, 1, 1, 1, 0, 1])               # example 4 is padding
  total = sum(np.asarray(segmentation.confusion_matrix(labels[i:i + 2], preds[i:i + 2], k,
                                                       weights=weights[i:i + 2]))
              for i in range(0, 6, 2))
  keep = (labels != 255) & (weights[:, None, None] == 1)
  y, p = labels[keep], preds[keep]
  np.testing.assert_array_equal(total, sk_confusion(y, p, labels=range(k)))
  s = segmentation.scores(total)
  np.testing.assert_allclose(s['iou'], jaccard_score(y, p, average=None, labels=range(k)))
  assert s['miou'] == pytest.approx(jaccard_score(y, p, average='macro'))
  assert s['pixel_accuracy'] == pytest.approx(np.mean(y == p))


def test_absent_classes_are_left_out_and_bad_input():
  conf = np.array([[3, 1, 0], [0, 2, 0], [0, 0, 0]])   # class 2 never seen
  s = segmentation.scores(conf)
  assert np.isnan(s['iou'][2])
  assert s['miou'] == pytest.approx((3 / 4 + 2 / 3) / 2)
  assert s['mean_class_accuracy'] == pytest.approx((3 / 4 + 1) / 2)
  with pytest.raises(ValueError, match='empty'):
    segmentation.scores(np.zeros((2, 2)))
  with pytest.raises(ValueError, match='differ'):
    segmentation.confusion_matrix(np.zeros((2, 3)), np.zeros((3, 2)), 2)
