"""ROC-AUC and average precision against scikit-learn, with ties and several tasks."""

import numpy as np
import pytest
from sklearn import metrics as skm

from jaxvision.metrics import ranking


@pytest.mark.parametrize('rounding', [None, 1])
def test_binary_matches_sklearn(rounding):
  rng = np.random.default_rng(0)
  y = rng.random(400) < 0.3
  s = rng.random(400) + 0.5 * y
  if rounding is not None:
    s = np.round(s, rounding)     # many ties
  assert ranking.roc_auc(y, s) == pytest.approx(skm.roc_auc_score(y, s), abs=1e-12)
  assert ranking.average_precision(y, s) == pytest.approx(
      skm.average_precision_score(y, s), abs=1e-12)


def test_multilabel_macro_matches_sklearn_and_skips_undefined_tasks():
  rng = np.random.default_rng(1)
  y = rng.random((300, 4)) < 0.4
  s = rng.normal(size=(300, 4)) + y
  assert ranking.roc_auc(y, s) == pytest.approx(skm.roc_auc_score(y, s, average='macro'))
  assert ranking.average_precision(y, s) == pytest.approx(
      skm.average_precision_score(y, s, average='macro'))
  y2 = y.copy()
  y2[:, 2] = False                 # no positive: undefined, left out of the mean
  per = ranking.roc_auc(y2, s, per_task=True)
  assert np.isnan(per[2])
  assert ranking.roc_auc(y2, s) == pytest.approx(np.mean(per[[0, 1, 3]]))


def test_closed_forms_and_bad_input():
  assert ranking.roc_auc([0, 0, 1, 1], [0.1, 0.2, 0.3, 0.4]) == 1.0
  assert ranking.roc_auc([0, 1], [0.5, 0.5]) == 0.5
  # ranked: +, -, +  -> AP = (1/2)(1) + (1/2)(2/3)
  assert ranking.average_precision([1, 0, 1], [0.9, 0.8, 0.7]) == pytest.approx(5 / 6)
  with pytest.raises(ValueError, match='both'):
    ranking.roc_auc([1, 1], [0.1, 0.2])
  with pytest.raises(ValueError, match='binary'):
    ranking.roc_auc([0, 2], [0.1, 0.2])
  with pytest.raises(ValueError, match='NaN'):
    ranking.average_precision([0, 1], [np.nan, 0.2])
  with pytest.raises(ValueError, match='same shape'):
    ranking.roc_auc([0, 1, 1], [0.1, 0.2])
