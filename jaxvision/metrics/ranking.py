"""Ranking metrics of scores against binary labels: ROC-AUC and average precision.

`roc_auc`: the area under the ROC curve, computed as the Mann-Whitney statistic with
ties counted one half (equal to the trapezoidal area of the ROC curve with one point
per distinct score, scikit-learn's `roc_auc_score`).

`average_precision`: scikit-learn's `average_precision_score`, the step-wise area
AP = sum_n (R_n - R_{n-1}) P_n over the thresholds at distinct scores (no
interpolation; tied scores enter at one threshold).

Both take (N,) labels/scores, or (N, C) for C independent binary tasks, macro-averaged
over the tasks that have both classes (`per_task=True` returns every task's value,
NaN where undefined).
"""

from __future__ import annotations

import numpy as np
from scipy import stats


def _prepare(labels, scores):
  y = np.asarray(labels)
  s = np.asarray(scores, np.float64)
  if y.shape != s.shape:
    raise ValueError(f'labels {y.shape} and scores {s.shape} must have the same shape')
  if y.ndim not in (1, 2) or y.shape[0] == 0:
    raise ValueError(f'need (N,) or (N, C) labels and scores with N > 0, got {y.shape}')
  if not np.all(np.isfinite(s)):
    raise ValueError('scores contain NaN or inf')
  if not np.all((y == 0) | (y == 1)):
    raise ValueError('labels must be binary (0/1 or bool)')
  return y.astype(bool), s


def _binary_auc(y, s):
  n_pos, n_neg = int(y.sum()), int((~y).sum())
  if n_pos == 0 or n_neg == 0:
    return np.nan
  ranks = stats.rankdata(s)
  return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def _binary_ap(y, s):
  n_pos = int(y.sum())
  if n_pos == 0:
    return np.nan
  order = np.argsort(-s, kind='stable')
  s, y = s[order], y[order]
  last = np.append(np.diff(s) != 0, True)        # last element of each tie group
  tp = np.cumsum(y)[last]
  seen = (np.arange(len(y)) + 1)[last]
  precision, recall = tp / seen, tp / n_pos
  return float(np.sum(np.diff(np.concatenate([[0.0], recall])) * precision))


def _apply(fn, labels, scores, per_task, name):
  y, s = _prepare(labels, scores)
  if y.ndim == 1:
    v = fn(y, s)
    if np.isnan(v):
      raise ValueError(f'{name} needs both positive and negative examples')
    return v
  values = np.array([fn(y[:, c], s[:, c]) for c in range(y.shape[1])])
  if per_task:
    return values
  if np.all(np.isnan(values)):
    raise ValueError(f'{name}: no task has both positive and negative examples')
  return float(np.nanmean(values))


def roc_auc(labels, scores, *, per_task: bool = False):
  """Area under the ROC curve (ties count one half)."""
  return _apply(_binary_auc, labels, scores, per_task, 'ROC-AUC')


def average_precision(labels, scores, *, per_task: bool = False):
  """Step-wise average precision (scikit-learn's definition)."""
  return _apply(_binary_ap, labels, scores, per_task, 'average precision')
