"""Anomaly localisation metrics: AU-PRO (MVTec protocol) and AUROC.

AU-PRO (Bergmann et al., "The MVTec Anomaly Detection Dataset", IJCV 2021, Sec. 5.2; the
MVTec 3D-AD evaluation code used by Coupled Laplacian, Bastico et al., CVPR 2024,
Sec. 4.1): every connected component of every ground-truth mask (8-connectivity) is one
region.  Sweeping a threshold over all anomaly scores, the per-region overlap (PRO) is
the mean over regions of the fraction of the region above the threshold, and the false
positive rate is over all non-anomalous pixels of all images.  The PRO(FPR) curve,
with a point per distinct score and (0, 0) prepended, is integrated with the trapezoid
rule up to FPR = `integration_limit` (the curve linearly interpolated there) and
divided by that limit (so 1.0 is perfect).

`auroc`: area under the ROC curve (`jaxvision.metrics.ranking.roc_auc`).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from jaxvision.metrics import ranking


def _check_maps(gts, preds):
  gts = [np.asarray(g, bool) for g in gts]
  preds = [np.asarray(p, np.float64) for p in preds]
  if len(gts) != len(preds) or not gts:
    raise ValueError(f'need equally many masks and score maps (got {len(gts)}, {len(preds)})')
  for i, (g, p) in enumerate(zip(gts, preds)):
    if g.shape != p.shape or g.ndim != 2:
      raise ValueError(f'image {i}: mask {g.shape} and scores {p.shape} must be equal 2-D shapes')
    if not np.all(np.isfinite(p)):
      raise ValueError(f'image {i}: anomaly scores contain NaN or inf')
  return gts, preds


def pro_curve(gts, preds, valid=None):
  """(fprs, pros), ascending, one point per distinct score, (0, 0) first.

  `valid` (optional masks): only those pixels take part (e.g. the object's pixels);
  regions are the components of `gt & valid`.
  """
  gts, preds = _check_maps(gts, preds)
  if valid is None:
    valid = [np.ones(g.shape, bool) for g in gts]
  valid, _ = _check_maps(valid, preds)
  fp_w, pro_w = [], []
  n_ok, n_regions = 0, 0
  for g, v in zip(gts, valid):
    labels, n = ndimage.label(g & v, structure=np.ones((3, 3), int))
    ok = (labels == 0) & v
    n_ok += int(ok.sum())
    n_regions += n
    pw = np.zeros(g.shape)
    if n:
      sizes = np.bincount(labels.ravel())
      region = labels > 0
      pw[region] = 1.0 / sizes[labels[region]]
    fp_w.append(ok.astype(np.float64).ravel())
    pro_w.append(pw.ravel())
  if n_regions == 0:
    raise ValueError('AU-PRO needs at least one anomalous region in the ground truth')
  if n_ok == 0:
    raise ValueError('AU-PRO needs at least one non-anomalous pixel')
  scores = np.concatenate([p.ravel() for p in preds])
  order = np.argsort(-scores, kind='stable')
  s = scores[order]
  fprs = np.cumsum(np.concatenate(fp_w)[order]) / n_ok
  pros = np.cumsum(np.concatenate(pro_w)[order]) / n_regions
  last_of_score = np.append(np.diff(s) != 0, True)
  fprs, pros = np.clip(fprs[last_of_score], 0, 1), np.clip(pros[last_of_score], 0, 1)
  return np.concatenate([[0.0], fprs]), np.concatenate([[0.0], pros])


def trapezoid_to(x, y, x_max: float) -> float:
  """∫ y dx from x[0] to x_max over the piecewise-linear curve (x ascending)."""
  x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
  keep = x <= x_max
  xs, ys = x[keep], y[keep]
  if not keep.all():
    j = int(np.argmax(~keep))         # first point beyond x_max
    x0, x1, y0, y1 = x[j - 1], x[j], y[j - 1], y[j]
    y_at = y0 + (y1 - y0) * (x_max - x0) / (x1 - x0) if x1 > x0 else y1
    xs, ys = np.append(xs, x_max), np.append(ys, y_at)
  return float(np.sum(0.5 * (ys[1:] + ys[:-1]) * np.diff(xs)))


def au_pro(gts, preds, integration_limit: float = 0.3, valid=None) -> float:
  """Normalised area under the PRO curve up to FPR = `integration_limit`."""
  if not 0 < integration_limit <= 1:
    raise ValueError(f'integration_limit must be in (0, 1], got {integration_limit}')
  fprs, pros = pro_curve(gts, preds, valid)
  return trapezoid_to(fprs, pros, integration_limit) / integration_limit


def auroc(labels, scores) -> float:
  """Area under the ROC curve of binary labels (ties count one half): `ranking.roc_auc`."""
  y = np.asarray(labels, bool).ravel()
  s = np.asarray(scores, np.float64).ravel()
  if y.shape != s.shape:
    raise ValueError(f'{y.size} labels for {s.size} scores')
  return ranking.roc_auc(y, s)


def pair_accuracy(predicted, truth) -> float:
  """Fraction of pairs whose prediction equals the truth (BSE accuracy over pairs)."""
  p, t = np.asarray(predicted, bool).ravel(), np.asarray(truth, bool).ravel()
  if p.shape != t.shape or p.size == 0:
    raise ValueError(f'need equally many predictions and truths, got {p.size} and {t.size}')
  return float(np.mean(p == t))
