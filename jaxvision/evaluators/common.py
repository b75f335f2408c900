"""What every shared evaluator has: its settings, its prediction function and batches."""

from __future__ import annotations

from typing import Any, Callable, Mapping

from jaxvision import config as config_lib
from jaxvision.evaluators import inference

# Keys every shared evaluator reads (each adds its own in DEFAULTS).
COMMON = {
    'type': config_lib.REQUIRED,
    'every': 0,            # steps between runs; 0 = only at the end of training
    'split': 'test',       # passed to the project's eval_data(config, split)
    'batch_size': 256,     # global; a multiple of the data-parallel mesh size
    'pred': 'predict',     # name of one of the project's predict_fns
}


def defaults(**extra) -> dict[str, Any]:
  return {**COMMON, **extra}


def predict_fn(predict_fns: Mapping[str, Callable], cfg, where: str) -> Callable:
  """`predict_fns[cfg.pred]`, or a ConfigError naming the entry and the choices."""
  if cfg.pred not in predict_fns:
    raise config_lib.ConfigError(
        f"{where}.pred={cfg.pred!r}: the project has no such prediction function; available: "
        f"{sorted(predict_fns) or 'none'}")
  return predict_fns[cfg.pred]


def require_output(outputs: Mapping[str, Any], key: str, where: str, pred: str) -> Any:
  """`outputs[key]`, or a ValueError saying which prediction function lacks it."""
  if key not in outputs:
    raise ValueError(f"{where}: prediction function {pred!r} returned {sorted(outputs)}, "
                     f"no {key!r}")
  return outputs[key]


class Evaluator:
  """Name, schedule, settings and the sharded inference of one `config.evals` entry."""

  DEFAULTS: dict[str, Any] = COMMON

  def __init__(self, name: str, cfg, ctx: inference.EvalContext,
               predict_fns: Mapping[str, Callable]):
    self.name, self.cfg, self.ctx = name, cfg, ctx
    self.every = int(cfg.every)
    self.where = f'config.evals.{name}'
    self.fn = predict_fn(predict_fns, cfg, self.where)

  def batches(self, split: str | None = None):
    return inference.split_batches(self.ctx, split or self.cfg.split, int(self.cfg.batch_size))

  def output(self, outputs, key):
    return require_output(outputs, key, self.where, self.cfg.pred)
