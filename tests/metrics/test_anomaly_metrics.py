"""AU-PRO and AUROC against brute-force threshold sweeps and scikit-learn."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage
from sklearn.metrics import roc_auc_score

from jaxvision.metrics import anomaly


def _masks_and_scores(seed=0, n=4, size=24):
  rng = np.random.default_rng(seed)
  gts, preds = [], []
  for i in range(n):
    g = np.zeros((size, size), bool)
    if i % 2 == 0:   # two blobs, one of them touching diagonally only (8-connectivity)
      g[3:7, 4:9] = True
      g[12:15, 12:14] = True
      g[15, 14] = True
    s = rng.random((size, size)) + 0.8 * g + 0.5 * ndimage.uniform_filter(g.astype(float), 5)
    gts.append(g)
    preds.append(np.round(s, 2))   # rounded: many tied scores
  return gts, preds


def _brute_force_au_pro(gts, preds, limit):
  regions, ok = [], []
  for g, p in zip(gts, preds):
    lab, n = ndimage.label(g, structure=np.ones((3, 3)))
    regions += [p[lab == k] for k in range(1, n + 1)]
    ok.append(p[lab == 0])
  ok = np.concatenate(ok)
  fprs, pros = [0.0], [0.0]
  for th in np.unique(np.concatenate([p.ravel() for p in preds]))[::-1]:
    fprs.append(np.mean(ok >= th))
    pros.append(np.mean([np.mean(r >= th) for r in regions]))
  fprs, pros = np.array(fprs), np.array(pros)
  grid = np.linspace(0, limit, 200001)
  return np.trapezoid(np.interp(grid, fprs, pros), grid) / limit


@pytest.mark.parametrize('limit', [0.3, 0.05, 1.0])
def test_au_pro_matches_brute_force_sweep(limit):
  gts, preds = _masks_and_scores()
  got = anomaly.au_pro(gts, preds, limit)
  assert got == pytest.approx(_brute_force_au_pro(gts, preds, limit), abs=1e-6)


def test_au_pro_closed_forms():
  gts, preds = _masks_and_scores(1)
  assert anomaly.au_pro(gts, [g.astype(float) for g in gts]) == pytest.approx(1.0)
  rng = np.random.default_rng(0)
  big = [np.zeros((200, 200), bool) for _ in range(3)]
  for g in big:
    g[50:120, 60:140] = True
  random_scores = [rng.random(g.shape) for g in big]
  # Uninformative scores: PRO = FPR, area 0.3²/2, normalised 0.15.
  assert anomaly.au_pro(big, random_scores) == pytest.approx(0.15, abs=0.01)


def test_au_pro_counts_regions_not_pixels():
  g = np.zeros((20, 20), bool)
  g[0:10, 0:10] = True          # a big region ...
  g[15, 15] = True              # ... and a one-pixel region
  p = np.zeros((20, 20))
  p[15, 15] = 1.0               # only the small one is found
  fprs, pros = anomaly.pro_curve([g], [p])
  assert pros[1] == pytest.approx(0.5)   # half the regions, 1% of the anomalous pixels
  assert fprs[1] == 0.0


def test_auroc_matches_sklearn_with_ties():
  rng = np.random.default_rng(3)
  y = rng.random(500) < 0.3
  s = np.round(rng.random(500) + 0.4 * y, 1)
  assert anomaly.auroc(y, s) == pytest.approx(roc_auc_score(y, s), abs=1e-12)


def test_metrics_reject_bad_input():
  with pytest.raises(ValueError, match='anomalous region'):
    anomaly.au_pro([np.zeros((4, 4), bool)], [np.zeros((4, 4))])
  with pytest.raises(ValueError, match='NaN'):
    anomaly.au_pro([np.eye(4, dtype=bool)], [np.full((4, 4), np.nan)])
  with pytest.raises(ValueError, match='both'):
    anomaly.auroc(np.ones(3), np.arange(3))
  assert anomaly.pair_accuracy([True, False, True], [True, True, True]) == pytest.approx(2 / 3)
