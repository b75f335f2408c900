"""`type='linear_probe'`: few-shot closed-form linear probe on the model's features.

big_vision's few-shot evaluator (`jaxvision.metrics.linear_probe`): the prediction
function's `features` (N, D) of the `train_split` examples fit an L2-regularised
least-squares classifier for every value of `l2_regs`, scored on `split`.  Reported:
`l2_<value>` top-1 accuracy for every value, `accuracy` for the first one, `count`.
"""

from __future__ import annotations

import numpy as np

from jaxvision import config as config_lib
from jaxvision.evaluators import common
from jaxvision.evaluators import inference
from jaxvision.metrics import linear_probe


class Evaluator(common.Evaluator):

  DEFAULTS = common.defaults(pred='features', train_split='train', label_key='label',
                             features_key='features', l2_regs=(2.0 ** 10,), num_classes=0)

  def __init__(self, name, cfg, ctx, predict_fns):
    super().__init__(name, cfg, ctx, predict_fns)
    if not cfg.l2_regs:
      raise config_lib.ConfigError(f'{self.where}.l2_regs is empty')
    self.infer = inference.Inference(ctx, self.fn, keep=(cfg.label_key,))

  def _features(self, params, split):
    out = self.infer.predict(params, self.batches(split))
    x = np.asarray(self.output(out, self.cfg.features_key))
    if x.ndim != 2:
      raise ValueError(f'{self.where}: features must be (N, D), got {x.shape} from '
                       f'prediction function {self.cfg.pred!r}')
    return x, np.asarray(out[self.cfg.label_key])

  def run(self, params):
    x_train, y_train = self._features(params, self.cfg.train_split)
    x_test, y_test = self._features(params, self.cfg.split)
    k = int(self.cfg.num_classes) or int(max(y_train.max(), y_test.max())) + 1
    cache = linear_probe.fit(x_train, y_train, k)
    out = {f'l2_{float(l2):g}': linear_probe.accuracy(cache, x_test, y_test, float(l2))
           for l2 in self.cfg.l2_regs}
    out['accuracy'] = out[f'l2_{float(self.cfg.l2_regs[0]):g}']
    out['count'] = float(len(y_test))
    return out
