"""`type='segmentation'`: mIoU, pixel and mean class accuracy over a split.

The prediction function returns per-pixel `logits` (N, H, W, C) or class `labels`
(N, H, W); the batch holds the label maps.  Each batch's (C, C) confusion matrix is
computed inside the jitted step (padding examples and `ignore_index` pixels left out)
and the matrices are summed on host (`jaxvision.metrics.segmentation`).
"""

from __future__ import annotations

import jax.numpy as jnp

from jaxvision import config as config_lib
from jaxvision.data.pipeline import MASK_KEY
from jaxvision.evaluators import common
from jaxvision.evaluators import inference
from jaxvision.metrics import segmentation as metrics


class Evaluator(common.Evaluator):
  """`run(params)` -> {'miou', 'pixel_accuracy', 'mean_class_accuracy', 'iou/<c>'...}."""

  DEFAULTS = common.defaults(num_classes=config_lib.REQUIRED, ignore_index=255,
                             label_key='label', per_class=False)

  def __init__(self, name, cfg, ctx, predict_fns):
    super().__init__(name, cfg, ctx, predict_fns)
    fn, k, ignore, label_key = self.fn, int(cfg.num_classes), int(cfg.ignore_index), cfg.label_key

    def confusion(params, batch):
      out = fn(params, batch)
      if 'labels' in out:
        pred = out['labels']
      else:
        pred = jnp.argmax(self.output(out, 'logits'), axis=-1)
      return {'confusion': metrics.confusion_matrix(batch[label_key], pred, k,
                                                    ignore_index=ignore,
                                                    weights=batch[MASK_KEY])}

    self.infer = inference.Inference(ctx, confusion)

  def run(self, params):
    conf = self.infer.accumulate(params, self.batches(), inference.batch_totals)['confusion']
    s = metrics.scores(conf)
    out = {k: s[k] for k in ('miou', 'pixel_accuracy', 'mean_class_accuracy')}
    if self.cfg.per_class:
      out.update({f'iou/{c}': float(v) for c, v in enumerate(s['iou'])})
    out['pixels'] = float(conf.sum())
    return out
