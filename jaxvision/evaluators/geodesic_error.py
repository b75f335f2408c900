"""`type='geodesic_error'`: dense shape correspondence error (`jaxvision.metrics.geodesic`).

One example is a shape pair.  The prediction function returns `correspondence` (N, V)
(the target vertex of every source vertex); the batch holds the true map
`gt_correspondence` (N, V), the target's geodesic distance matrix `geodesic`
(N, Vt, Vt), already normalised by sqrt(area) unless `normalize_key` names a (N,)
field to divide by, and optionally `vertex_mask` (N, V) for padded vertices.  Errors,
per-pair means and PCK counts are reduced inside the jitted step.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from jaxvision.data.pipeline import MASK_KEY
from jaxvision.evaluators import common
from jaxvision.evaluators import inference
from jaxvision.metrics import geodesic


class Evaluator(common.Evaluator):
  """`run(params)` -> {'mean_error', 'auc', 'pck@<t>' ..., 'pairs'}."""

  DEFAULTS = common.defaults(correspondence_key='correspondence',
                             gt_key='gt_correspondence', geodesic_key='geodesic',
                             vertex_mask_key='vertex_mask', normalize_key='',
                             max_threshold=0.25, num_thresholds=101, report_at=(0.05, 0.1))

  def __init__(self, name, cfg, ctx, predict_fns):
    super().__init__(name, cfg, ctx, predict_fns)
    if cfg.max_threshold <= 0 or cfg.num_thresholds < 2:
      raise ValueError(f'{self.where}: need max_threshold > 0 and num_thresholds >= 2')
    self.thresholds = np.linspace(0.0, float(cfg.max_threshold), int(cfg.num_thresholds))
    fn, c = self.fn, cfg
    curve_t = jnp.asarray(self.thresholds, jnp.float32)
    report_t = jnp.asarray(np.asarray(cfg.report_at, np.float32).reshape(-1))

    def totals(params, batch):
      out = fn(params, batch)
      dist = batch[c.geodesic_key].astype(jnp.float32)
      if c.normalize_key:
        dist = dist / batch[c.normalize_key].astype(jnp.float32)[:, None, None]
      err = geodesic.vertex_errors(dist, self.output(out, c.correspondence_key), batch[c.gt_key])
      w = batch[MASK_KEY].astype(jnp.float32)[:, None] * jnp.ones_like(err)
      if c.vertex_mask_key and c.vertex_mask_key in batch:
        w = w * batch[c.vertex_mask_key].astype(jnp.float32)
      n = jnp.sum(w, axis=1)
      pair_mean = jnp.sum(err * w, axis=1) / jnp.maximum(n, 1.0)
      return {'pair_error': jnp.sum(pair_mean * batch[MASK_KEY]),
              'pairs': jnp.sum(batch[MASK_KEY].astype(jnp.float32)),
              'vertices': jnp.sum(w), 'curve': geodesic.pck_counts(err, curve_t, w),
              'report': geodesic.pck_counts(err, report_t, w)}

    self.infer = inference.Inference(ctx, totals)

  def run(self, params):
    t = self.infer.accumulate(params, self.batches(), inference.batch_totals)
    vertices = max(float(t['vertices']), 1.0)
    curve = np.asarray(t['curve']) / vertices
    out = {'mean_error': float(t['pair_error']) / max(float(t['pairs']), 1.0),
           'auc': geodesic.pck_auc(self.thresholds, curve), 'pairs': float(t['pairs'])}
    for thr, v in zip(np.asarray(self.cfg.report_at).reshape(-1), np.asarray(t['report'])):
      out[f'pck@{float(thr):g}'] = float(v) / vertices
    return out
