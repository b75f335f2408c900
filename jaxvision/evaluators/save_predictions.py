"""`type='save_predictions'`: writes a split's predictions to `<workdir>/predictions/`.

Every output of the prediction function (or those named in `outputs`) plus the batch
fields named in `keep` (e.g. labels, ids), for every example in dataset order, into
`<name>.npz` (overwritten by each run; process 0 writes).
"""

from __future__ import annotations

import os

import numpy as np

from jaxvision.evaluators import common
from jaxvision.evaluators import inference


class Evaluator(common.Evaluator):
  """`run(params)` -> {'count'}; the file is the result."""

  DEFAULTS = common.defaults(outputs=(), keep=())

  def __init__(self, name, cfg, ctx, predict_fns):
    super().__init__(name, cfg, ctx, predict_fns)
    if not ctx.workdir:
      raise ValueError(f'{self.where}: save_predictions needs a workdir')
    self.infer = inference.Inference(ctx, self.fn, keep=tuple(cfg.keep))
    self.path = os.path.join(ctx.workdir, 'predictions', f'{name}.npz')

  def run(self, params):
    out = self.infer.predict(params, self.batches())
    names = tuple(self.cfg.outputs) or tuple(k for k in out if k not in self.cfg.keep)
    arrays = {k: self.output(out, k) for k in names + tuple(self.cfg.keep)}
    if self.ctx.process_index == 0:
      os.makedirs(os.path.dirname(self.path), exist_ok=True)
      tmp = self.path + '.tmp.npz'
      np.savez(tmp, **arrays)
      os.replace(tmp, self.path)
    return {'count': float(len(next(iter(arrays.values()))))}
