"""FroFA evaluators: MAP-head top-1 accuracy on a cached split, and the closed-form
L2-regularised linear probe (`jaxvision.metrics.linear_probe`) fitted on the same k-shot
training set, on average-pooled feature grids (the paper's linear-probe baseline)."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from jaxvision import config as config_lib
from jaxvision import evaluation
from jaxvision.data import pipeline
from jaxvision.data.sources import ArraySource
from jaxvision.metrics import linear_probe
from jaxvision.projects.frofa import data

EVALUATOR_DEFAULTS = {
    'type': 'accuracy',     # 'accuracy' (the trained head) | 'linear_probe'
    'split': 'test',        # a cached role: 'val' or 'test'
    'every': 0,
    'batch_size': 256,
    'l2_regs': (2.0 ** 10,),  # linear_probe: every value is reported; the first is 'accuracy'
}


class AccuracyEvaluator:
  """`run(params)` -> {'accuracy', 'loss', 'count'} of the head over a whole cached split."""

  def __init__(self, name, cfg, ctx: evaluation.EvalContext):
    self.name, self.every, self._cfg, self._ctx = name, int(cfg.every), cfg, ctx
    self._source = ArraySource(data.load_role(ctx.config.input, cfg.split))

  def _per_example(self, params, batch):
    logits = self._ctx.model.apply({'params': params}, batch['features'], train=False)
    labels = batch['label']
    logp = logits - jnp.max(logits, -1, keepdims=True)
    logp = logp - jnp.log(jnp.sum(jnp.exp(logp), -1, keepdims=True))
    loss = -jnp.take_along_axis(logp, labels[:, None], axis=-1)[:, 0]
    return {'correct': jnp.argmax(logits, -1) == labels, 'loss': loss}

  def run(self, params):
    ctx = self._ctx
    batches = iter(pipeline.eval_dataset(
        self._source, global_batch_size=self._cfg.batch_size,
        process_index=ctx.process_index, process_count=ctx.process_count))
    sums = evaluation.sum_over_dataset(ctx, batches, self._per_example, params)
    n = max(sums['count'], 1.0)
    return {'accuracy': sums['correct'] / n, 'loss': sums['loss'] / n, 'count': sums['count']}


class LinearProbeEvaluator:
  """Closed-form probe on the k-shot train set's mean-pooled features (params unused)."""

  def __init__(self, name, cfg, ctx: evaluation.EvalContext):
    self.name, self.every, self._cfg = name, int(cfg.every), cfg
    input_cfg = ctx.config.input
    train = data.fewshot_train(input_cfg)
    test = data.load_role(input_cfg, cfg.split)
    pool = lambda f: f.reshape(f.shape[0], -1, f.shape[-1]).mean(1)
    self._cache = linear_probe.fit(pool(train['features']), train['label'],
                                   input_cfg.num_classes)
    self._x, self._y = pool(test['features']), test['label']
    if not self._cfg.l2_regs:
      raise config_lib.ConfigError(f'config.evals.{name}.l2_regs is empty')

  def run(self, params):
    del params
    out = {f'l2_{float(l2):g}': linear_probe.accuracy(self._cache, self._x, self._y, float(l2))
           for l2 in self._cfg.l2_regs}
    out['accuracy'] = out[f'l2_{float(self._cfg.l2_regs[0]):g}']
    out['count'] = float(len(self._y))
    return out


def make_evaluators(config, ctx):
  out = []
  for name, cfg in config.evals.items():
    cfg = config_lib.check_keys(cfg, EVALUATOR_DEFAULTS, f'config.evals.{name}')
    if cfg.split not in ('val', 'test', 'train'):
      raise config_lib.ConfigError(f"config.evals.{name}.split={cfg.split!r}; use 'val', "
                                   "'test' or 'train' (the cached roles)")
    if cfg.type == 'accuracy':
      out.append(AccuracyEvaluator(name, cfg, ctx))
    elif cfg.type == 'linear_probe':
      out.append(LinearProbeEvaluator(name, cfg, ctx))
    else:
      raise config_lib.ConfigError(f"config.evals.{name}.type={cfg.type!r}; valid: "
                                   "'accuracy', 'linear_probe'")
  return out
