"""`type='roc_auc'`: ROC-AUC and average precision of scores against binary labels.

The prediction function returns `scores`: (N,) against binary labels (N,), or (N, C)
against multi-label targets (N, C) or integer classes (N,) (one-vs-rest), macro-averaged
over the classes that have both positives and negatives (`jaxvision.metrics.ranking`).
"""

from __future__ import annotations

import numpy as np

from jaxvision.evaluators import common
from jaxvision.evaluators import inference
from jaxvision.metrics import ranking


class Evaluator(common.Evaluator):
  """`run(params)` -> {'auc', 'average_precision', 'count'}."""

  DEFAULTS = common.defaults(label_key='label', scores_key='scores')

  def __init__(self, name, cfg, ctx, predict_fns):
    super().__init__(name, cfg, ctx, predict_fns)
    self.infer = inference.Inference(ctx, self.fn, keep=(cfg.label_key,))

  def run(self, params):
    out = self.infer.predict(params, self.batches())
    scores = np.asarray(self.output(out, self.cfg.scores_key), np.float64)
    labels = np.asarray(out[self.cfg.label_key])
    if scores.ndim == 2 and labels.ndim == 1:
      labels = np.eye(scores.shape[1], dtype=bool)[labels]
    return {'auc': ranking.roc_auc(labels, scores),
            'average_precision': ranking.average_precision(labels, scores),
            'count': float(len(scores))}
