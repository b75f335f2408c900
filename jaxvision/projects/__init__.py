"""One sub-package per paper.  `config.project` names one; `jaxvision.train` uses it.

The contract between a project and the binary (DESIGN.md).  A project module declares
its `kind`, and the binary checks at start-up that it provides what that kind needs
(`load_project` raises naming every missing function).

Every kind provides:

  kind: str                              'trained' | 'evaluate_only' | 'per_example'
  default_config() -> ConfigDict         defaults of its sections (every key it reads;
                                         unknown keys are errors)

and its evaluators come from `config.evals`: each entry names a `type`, either one of
the shared types of `jaxvision.evaluators` (classification, linear_probe, roc_auc,
retrieval, detection, segmentation, geodesic_error, save_predictions) or one of the
project's own.  For those a project provides what applies:

  predict_fns(model, config) -> {name: fn(params, batch) -> {output: array}}
                                        what the shared evaluators run, by the name in
                                        their `pred` key (trained projects)
  eval_data(config, split) -> (random-access source, preprocess fn or None)
                                        the examples those evaluators read
  EVALUATORS = {type: class}            paper-specific evaluator types, built like the
                                        shared ones: class(name, cfg, ctx, predict_fns)
                                        with `DEFAULTS`, `.name`, `.every`,
                                        `.run(params) -> dict`; inference that runs a
                                        model goes through jaxvision.evaluators.inference

(a) kind = 'trained' (a model learnt by the loop: ViT, FroFA, FlowMDM) also provides

  make_model(model_config) -> nn.Module
  init_params(model, rng, batch) -> boxed params   (batch: a dummy batch, leading dim 1)
  batch_spec(config, split) -> {field: jax.ShapeDtypeStruct}  GLOBAL batch shapes/dtypes
  loss_fn(params, batch, rng, *, model, config) -> (loss, {name: scalar})
  make_dataset(config, split, *, seed, process_index, process_count) -> grain dataset

  and optionally
  load_pretrained(params, config) -> params   called once on a fresh run (no checkpoint)
      with the fresh SHARDED params as the target: it returns arrays with their
      shardings, placing each loaded leaf (`nn.param_tree.place`), never gathering
      the tree on one host
  mutable: tuple[str, ...]   non-param variable collections the model updates in
      training (BatchNorm's 'batch_stats').  Then `init_params` returns the variables
      dict {'params': ..., 'batch_stats': ...}, `loss_fn` takes them as
      `collections={'batch_stats': ...}` and returns `(loss, (metrics, new_collections))`,
      and evaluators' `run` receives the variables dict instead of bare params.
  The binary adds to these: an EMA/teacher copy of chosen params (`config.ema`), frozen
  sub-trees and param groups (`config.optimizer.lr_rules` / `groups`), and multi-stage
  pipelines (d): `config.init.from_workdir` starts a fresh run from chosen sub-trees of
  an earlier run's checkpoint (pre-train -> fine-tune, warm-up -> joint, a teacher).

(b) kind = 'evaluate_only' (a method that learns nothing: Coupled Laplacian, an
  axiomatic functional-map pipeline).  Its own `EVALUATORS`, nothing else: no model, loss, optimizer, dataset,
  train state or compiled step exists; the config has no model/optimizer/schedule/
  checkpoint sections and `total_steps` must be 0.  Evaluators get `run(None)` and the
  mesh through `ctx` for any sharded computation they do.

(c) kind = 'per_example' (an optimisation per test example: adversarial attacks,
  GAN/NeRF inversion, test-time refinement).  Provides what (b) provides; its
  evaluators run the inner optimisation with `jaxvision.inner_loop.run_inner_loop`
  (progress lines, NaN guards, resumable checkpoints of long jobs under
  `ctx.workdir`).  A model it optimises against comes from a finished run
  (`jaxvision.runs.load_run`) or from the config.  A trained project may run an inner
  loop in its evaluators the same way (test-time refinement).
"""

import importlib
from types import ModuleType

TRAINED = 'trained'
EVALUATE_ONLY = 'evaluate_only'
PER_EXAMPLE = 'per_example'
KINDS = (TRAINED, EVALUATE_ONLY, PER_EXAMPLE)

_COMMON = ('default_config',)
REQUIRED = {
    TRAINED: _COMMON + ('make_model', 'init_params', 'batch_spec', 'loss_fn', 'make_dataset'),
    EVALUATE_ONLY: _COMMON,
    PER_EXAMPLE: _COMMON,
}
# Without a model to predict with, the evaluators are the project's own.
_REQUIRED_TABLES = {EVALUATE_ONLY: ('EVALUATORS',), PER_EXAMPLE: ('EVALUATORS',)}
# What a project of another kind must NOT define: the stand-ins kind (b) replaces.
_TRAINING_FUNCTIONS = ('make_model', 'init_params', 'batch_spec', 'loss_fn', 'make_dataset',
                       'load_pretrained')
# Trainer config sections that exist only for trained projects.
TRAINING_ONLY_KEYS = ('model', 'optimizer', 'schedule', 'ema', 'init', 'checkpoint',
                      'profile', 'log_every')


class ContractError(TypeError):
  """A project module does not provide what its declared kind needs."""


def kind_of(module: ModuleType) -> str:
  return module.kind


def check_contract(module: ModuleType, name: str) -> None:
  """Raises ContractError naming the kind and every missing (or stand-in) function."""
  where = f'project {name!r} ({getattr(module, "__file__", "?")})'
  kind = getattr(module, 'kind', None)
  if kind is None:
    raise ContractError(f"{where} declares no `kind`; set kind = one of {list(KINDS)} "
                        'in its __init__.py')
  if kind not in KINDS:
    raise ContractError(f'{where} declares kind={kind!r}; valid kinds: {list(KINDS)}')
  missing = [f for f in REQUIRED[kind] if not callable(getattr(module, f, None))]
  if missing:
    raise ContractError(f'{where} is of kind {kind!r} but does not provide {missing} '
                        f'(a {kind!r} project needs {list(REQUIRED[kind])})')
  tables = [t for t in _REQUIRED_TABLES.get(kind, ())
            if not isinstance(getattr(module, t, None), dict)]
  if tables:
    raise ContractError(f'{where} is of kind {kind!r} but does not provide {tables} '
                        '(a dict {evaluator type: class}: its evaluators are the run)')
  if kind != TRAINED:
    extra = [f for f in _TRAINING_FUNCTIONS if hasattr(module, f)]
    if extra:
      raise ContractError(f'{where} is of kind {kind!r} (nothing is trained) but defines '
                          f'{extra}; remove them or declare kind={TRAINED!r}')
  mutable = getattr(module, 'mutable', ())
  if not (isinstance(mutable, (tuple, list)) and all(isinstance(m, str) for m in mutable)
          and 'params' not in mutable):
    raise ContractError(f"{where}: `mutable` must be a tuple of collection names other "
                        f"than 'params', got {mutable!r}")


def load_project(name: str) -> ModuleType:
  """Imports `jaxvision.projects.<name>` and checks it provides its kind's contract."""
  try:
    module = importlib.import_module(f'jaxvision.projects.{name}')
  except ModuleNotFoundError as e:
    if e.name and e.name.startswith('jaxvision.projects.'):
      raise ValueError(f"config.project={name!r}: no module jaxvision.projects.{name}") from e
    raise
  check_contract(module, name)
  return module
