"""Evaluators chosen by `type=` in each entry of `config.evals` (big_vision's idea).

  config.evals = dict(
      val=dict(type='classification', split='val', every=1000, batch_size=256),
      probe=dict(type='linear_probe', pred='features', train_split='train', split='test'))

Each entry names an evaluator; its `type` picks a module of this package (or a
paper-specific type of the project, the project's `EVALUATORS` table); every other key
is checked against that evaluator's `DEFAULTS` (unknown keys are errors naming the
entry).  Common keys: `every` (steps; 0 = only at the end), `split`, `batch_size` and
`pred`, the name of one of the project's prediction functions
(`predict_fns(model, config) -> {name: fn(params, batch) -> {output: array}}`).

Evaluators are objects with `name`, `every` and `run(params) -> {metric: float}`.  They
all run the model through `inference.Inference` (sharded, batched, padded and masked);
their metric maths lives in `jaxvision.metrics`.
"""

from __future__ import annotations

import dataclasses
import importlib
from typing import Any, Mapping

from jaxvision import config as config_lib
from jaxvision.evaluators.inference import EvalContext  # pylint: disable=unused-import
from jaxvision.evaluators.inference import Inference  # pylint: disable=unused-import

# type -> module of this package defining `Evaluator` (imported when used).
REGISTRY = {
    'classification': 'classification',
    'linear_probe': 'linear_probe',
    'roc_auc': 'roc_auc',
    'retrieval': 'retrieval',
    'detection': 'detection',
    'segmentation': 'segmentation',
    'geodesic_error': 'geodesic_error',
    'save_predictions': 'save_predictions',
}


def evaluator_class(kind: str, extra: Mapping[str, Any] | None = None, *, where: str = ''):
  """The evaluator class of a `type` (shared, or the project's own in `extra`)."""
  extra = dict(extra or {})
  if kind in extra:
    return extra[kind]
  if kind in REGISTRY:
    return importlib.import_module(f'jaxvision.evaluators.{REGISTRY[kind]}').Evaluator
  raise config_lib.ConfigError(
      f"{where}.type={kind!r} is not an evaluator type; known: "
      f"{', '.join(sorted(set(REGISTRY) | set(extra)))}")


def make_evaluators(evals: Mapping[str, Any], ctx: EvalContext,
                    predict_fns: Mapping[str, Any] | None = None, *,
                    extra: Mapping[str, Any] | None = None) -> list[Any]:
  """One evaluator per entry of `evals` (name -> settings with a `type`).

  `extra`: the project's paper-specific types (type -> class); they may not shadow a
  shared type.  A class has `DEFAULTS` (every key it reads) and is built as
  `cls(name, cfg, ctx, predict_fns)`.
  """
  extra = dict(extra or {})
  clash = sorted(set(extra) & set(REGISTRY))
  if clash:
    raise ValueError(f'project evaluator types {clash} shadow shared evaluator types')
  predict_fns = dict(predict_fns or {})
  out = []
  for name, cfg in (evals or {}).items():
    where = f'config.evals.{name}'
    if not isinstance(cfg, Mapping) and not hasattr(cfg, 'items'):
      raise config_lib.ConfigError(f'{where} must be a dict of settings, got {cfg!r}')
    if 'type' not in cfg:
      raise config_lib.ConfigError(
          f"missing required config key '{where}.type' (known types: "
          f"{', '.join(sorted(set(REGISTRY) | set(extra)))})")
    cls = evaluator_class(cfg['type'], extra, where=where)
    if cfg['type'] not in extra and not predict_fns:
      raise config_lib.ConfigError(
          f"{where}.type={cfg['type']!r} runs the project's prediction functions, and this "
          f"project provides none (no predict_fns); its own evaluator types: "
          f"{', '.join(repr(t) for t in sorted(extra)) or 'none'}")
    cfg = config_lib.check_keys(cfg, cls.DEFAULTS, where)
    out.append(cls(name, cfg, ctx, predict_fns))
  return out


def for_project(project, config, ctx: EvalContext) -> list[Any]:
  """The run's evaluators: `config.evals` with the project's predict_fns/eval_data/types."""
  if hasattr(project, 'eval_data'):
    ctx = dataclasses.replace(ctx, data=lambda split: project.eval_data(config, split))
  fns = project.predict_fns(ctx.model, config) if hasattr(project, 'predict_fns') else {}
  return make_evaluators(config.evals, ctx, fns, extra=getattr(project, 'EVALUATORS', None))
