"""Accuracy evaluator: top-1 accuracy and mean loss over one whole split."""

from __future__ import annotations


import jax.numpy as jnp

from jaxvision import config as config_lib
from jaxvision import evaluation
from jaxvision.data import pipeline
from jaxvision.projects.classification import data
from jaxvision.projects.classification import losses

EVALUATOR_DEFAULTS = {
    'type': 'classification',
    'split': 'test',
    'every': 0,          # steps between runs; 0 = only at the end of training
    'batch_size': 256,
}


class ClassificationEvaluator:
  """`run(params)` -> {'accuracy', 'loss', 'count'} over every example of `split`."""

  def __init__(self, name: str, cfg, ctx: evaluation.EvalContext):
    self.name, self.every, self._ctx = name, int(cfg.every), ctx
    self._cfg = cfg
    run_cfg = ctx.config
    _, eval_fn = data.preprocess_fns(run_cfg.input)
    self._source = data.make_source(run_cfg.input, cfg.split)
    self._preprocess = eval_fn

  def _batches(self):
    return iter(pipeline.eval_dataset(
        self._source, global_batch_size=self._cfg.batch_size, preprocess=self._preprocess,
        num_workers=self._ctx.config.input.num_workers,
        process_index=self._ctx.process_index, process_count=self._ctx.process_count))

  def _per_example(self, params, batch):
    ctx = self._ctx
    logits, _ = ctx.model.apply({'params': params}, batch['image'], train=False)
    loss = losses.classification_loss(logits, batch['label'], kind=ctx.config.loss.kind)
    correct = jnp.argmax(logits, axis=-1) == batch['label']
    return {'correct': correct, 'loss': loss}

  def run(self, params):
    sums = evaluation.sum_over_dataset(self._ctx, self._batches(), self._per_example, params)
    n = max(sums['count'], 1.0)
    return {'accuracy': sums['correct'] / n, 'loss': sums['loss'] / n, 'count': sums['count']}


def make_evaluators(config, ctx):
  out = []
  for name, cfg in config.evals.items():
    cfg = config_lib.check_keys(cfg, EVALUATOR_DEFAULTS, f'config.evals.{name}')
    if cfg.type != 'classification':
      raise config_lib.ConfigError(
          f"config.evals.{name}.type={cfg.type!r}; this project knows 'classification'")
    out.append(ClassificationEvaluator(name, cfg, ctx))
  return out
