"""`type='classification'`: top-1 accuracy and mean loss over one whole split.

The prediction function returns `logits` (N, C) and optionally a per-example `loss`
(N,) (a project with its own loss, e.g. sigmoid cross-entropy); without it the loss is
the softmax cross-entropy of the logits.  Both are summed over the valid examples
inside the jitted step (`jaxvision.metrics.classification`).
"""

from __future__ import annotations

from jaxvision.evaluators import common
from jaxvision.evaluators import inference
from jaxvision.metrics import classification as metrics


class Evaluator(common.Evaluator):
  """`run(params)` -> {'accuracy', 'loss', 'count'}."""

  DEFAULTS = common.defaults(label_key='label')

  def __init__(self, name, cfg, ctx, predict_fns):
    super().__init__(name, cfg, ctx, predict_fns)
    fn, label_key = self.fn, cfg.label_key

    def per_example(params, batch):
      out = fn(params, batch)
      logits, labels = self.output(out, 'logits'), batch[label_key]
      loss = out['loss'] if 'loss' in out else metrics.softmax_xent(logits, labels)
      return {'correct': metrics.correct(logits, labels), 'loss': loss}

    self.infer = inference.Inference(ctx, per_example)

  def run(self, params):
    sums = self.infer.accumulate(params, self.batches(), inference.masked_sums)
    n = max(float(sums['count']), 1.0)
    return {'accuracy': float(sums['correct']) / n, 'loss': float(sums['loss']) / n,
            'count': float(sums['count'])}
