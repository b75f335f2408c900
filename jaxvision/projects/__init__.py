"""One sub-package per paper.  `config.project` names one; `jaxvision.train` uses it.

A project module provides (DESIGN.md, "The contract between a project and train.py"):

  default_config() -> ConfigDict       defaults of its `model`, `input`, `evals` sections
                                        (every key it reads; unknown keys are errors)
  make_model(model_config) -> nn.Module
  init_params(model, rng, batch) -> boxed params   (batch: a dummy batch, leading dim 1)
  batch_spec(config, split) -> {field: jax.ShapeDtypeStruct}  GLOBAL batch shapes/dtypes
  loss_fn(params, batch, rng, *, model, config) -> (loss, {name: scalar})
  make_dataset(config, split, *, seed, process_index, process_count) -> grain dataset

and optionally:

  load_pretrained(params, config) -> params  called once on a fresh run (no checkpoint)
  predict_fns(model, config) -> {name: fn(params, batch) -> {output: array}}
                                        what the shared evaluators (`config.evals`
                                        entries with a `type` of jaxvision.evaluators)
                                        run, by the name in their `pred` key
  eval_data(config, split) -> (random-access source, preprocess fn or None)
                                        the examples those evaluators read
  EVALUATORS = {type: class}            paper-specific evaluator types, built like the
                                        shared ones: class(name, cfg, ctx, predict_fns)
                                        with `DEFAULTS`; their inference goes through
                                        jaxvision.evaluators.inference as well
"""

import importlib
from types import ModuleType

_REQUIRED = ('default_config', 'make_model', 'init_params', 'batch_spec', 'loss_fn',
             'make_dataset')


def load_project(name: str) -> ModuleType:
  """Imports `jaxvision.projects.<name>` and checks it provides the contract."""
  try:
    module = importlib.import_module(f'jaxvision.projects.{name}')
  except ModuleNotFoundError as e:
    if e.name and e.name.startswith('jaxvision.projects.'):
      raise ValueError(f"config.project={name!r}: no module jaxvision.projects.{name}") from e
    raise
  missing = [f for f in _REQUIRED if not hasattr(module, f)]
  if missing:
    raise TypeError(f'project {name!r} does not provide {missing}')
  return module
