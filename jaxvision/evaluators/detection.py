"""`type='detection'`: COCO box AP/AR over a split (`jaxvision.metrics.detection`).

Fixed-size, padded arrays per image.  The prediction function returns `boxes`
(N, D, 4) as (x0, y0, x1, y1), `scores` (N, D) and `classes` (N, D), rows with class
< 0 being padding; the batch holds the ground truth `gt_boxes` (N, G, 4) and
`gt_classes` (N, G) (class < 0 = padding), optionally `gt_crowd` (N, G) and `gt_area`
(N, G) (e.g. segment areas; default: box areas).
"""

from __future__ import annotations

import numpy as np

from jaxvision.evaluators import common
from jaxvision.evaluators import inference
from jaxvision.metrics import detection


class Evaluator(common.Evaluator):
  """`run(params)` -> {'AP', 'AP50', 'AP75', 'AP_small', ..., 'AR1', 'AR10', 'AR100', ...}."""

  DEFAULTS = common.defaults(boxes_key='boxes', scores_key='scores', classes_key='classes',
                             gt_boxes_key='gt_boxes', gt_classes_key='gt_classes',
                             gt_crowd_key='gt_crowd', gt_area_key='gt_area',
                             max_dets=detection.MAX_DETS)

  def __init__(self, name, cfg, ctx, predict_fns):
    super().__init__(name, cfg, ctx, predict_fns)
    keep = (cfg.gt_boxes_key, cfg.gt_classes_key, cfg.gt_crowd_key, cfg.gt_area_key)
    self.infer = inference.Inference(ctx, self.fn, keep=tuple(k for k in keep if k))

  def run(self, params):
    c = self.cfg
    out = self.infer.predict(params, self.batches())
    boxes, scores = self.output(out, c.boxes_key), self.output(out, c.scores_key)
    classes = self.output(out, c.classes_key)
    if c.gt_boxes_key not in out or c.gt_classes_key not in out:
      raise ValueError(f'{self.where}: the batches lack {c.gt_boxes_key!r} / '
                       f'{c.gt_classes_key!r}')
    dets, gts = [], []
    for i in range(len(boxes)):
      d = np.asarray(classes[i]) >= 0
      dets.append({'boxes': boxes[i][d], 'scores': scores[i][d], 'classes': classes[i][d]})
      g = np.asarray(out[c.gt_classes_key][i]) >= 0
      gt = {'boxes': out[c.gt_boxes_key][i][g], 'classes': out[c.gt_classes_key][i][g]}
      for key, field in (('crowd', c.gt_crowd_key), ('area', c.gt_area_key)):
        if field and field in out:
          gt[key] = out[field][i][g]
      gts.append(gt)
    result = detection.coco_evaluate(dets, gts, max_dets=tuple(c.max_dets))
    result['count'] = float(len(boxes))
    return result
