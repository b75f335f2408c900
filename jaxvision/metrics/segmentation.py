"""Semantic segmentation metrics from a confusion matrix accumulated over batches.

`confusion_matrix` (jax.numpy, so it runs inside the jitted evaluation step and only a
(C, C) matrix per batch leaves the devices) counts pixels by (true, predicted) class,
skipping pixels whose label is `ignore_index` (e.g. 255 in Cityscapes/ADE20K/VOC) or
outside [0, C), and pixels of padded examples (`weights`).  `scores` turns the summed
matrix into the standard numbers: IoU_c = TP_c / (TP_c + FP_c + FN_c), mIoU = mean over
classes that occur in the labels or the predictions (union > 0), pixel accuracy, and
mean class accuracy over classes present in the labels.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np


def confusion_matrix(labels, predictions, num_classes: int, *, ignore_index: int = 255,
                     weights=None):
  """(C, C) int32 counts, rows = true class, columns = predicted class."""
  labels = jnp.asarray(labels).astype(jnp.int32)
  predictions = jnp.asarray(predictions).astype(jnp.int32)
  if labels.shape != predictions.shape:
    raise ValueError(f'labels {labels.shape} and predictions {predictions.shape} differ')
  valid = (labels != ignore_index) & (labels >= 0) & (labels < num_classes)
  valid &= (predictions >= 0) & (predictions < num_classes)
  if weights is not None:   # per example (B,) -> broadcast over the pixels
    w = jnp.asarray(weights).astype(bool)
    valid &= w.reshape(w.shape + (1,) * (labels.ndim - w.ndim))
  index = jnp.where(valid, labels * num_classes + predictions, 0)
  counts = jnp.bincount(index.reshape(-1), weights=valid.reshape(-1).astype(jnp.int32),
                        length=num_classes * num_classes)
  return counts.reshape(num_classes, num_classes).astype(jnp.int32)


def scores(confusion) -> dict[str, float | np.ndarray]:
  """{'miou', 'iou' (C,) NaN where absent, 'pixel_accuracy', 'mean_class_accuracy'}."""
  conf = np.asarray(confusion, np.float64)
  if conf.ndim != 2 or conf.shape[0] != conf.shape[1]:
    raise ValueError(f'confusion matrix must be square, got {conf.shape}')
  total = conf.sum()
  if total == 0:
    raise ValueError('the confusion matrix is empty (every pixel ignored?)')
  tp = np.diag(conf)
  gt, pred = conf.sum(1), conf.sum(0)
  union = gt + pred - tp
  iou = np.where(union > 0, tp / np.where(union > 0, union, 1), np.nan)
  acc = np.where(gt > 0, tp / np.where(gt > 0, gt, 1), np.nan)
  return {'miou': float(np.nanmean(iou)), 'iou': iou, 'pixel_accuracy': float(tp.sum() / total),
          'mean_class_accuracy': float(np.nanmean(acc))}
