r"""THE jaxvision training binary: one loop for every method.

  python -m jaxvision.train --config=experiments/classification/digits_vit.py \
      --workdir=/tmp/digits [--config.total_steps=100 ...]

`config.project` names a module under `jaxvision.projects` that supplies the model,
loss, data and evaluators (see `jaxvision/projects/__init__.py`); this file owns the
rest.  It reads top to bottom: config -> mesh -> input -> model & optimizer -> sharded
state (restored from the workdir if a checkpoint exists) -> train step -> evaluators ->
loop.  `total_steps=0` evaluates only.  `train(config, workdir)` is importable and
returns the train and eval summaries.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import sys
import threading
import time
from typing import Any

from absl import app
from absl import flags
from absl import logging
from clu import parameter_overview
import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
from ml_collections import config_flags
import numpy as np

from jaxvision import checkpoint as checkpoint_lib
from jaxvision import config as config_lib
from jaxvision import evaluators as evaluators_lib
from jaxvision import optim
from jaxvision import projects
from jaxvision import sharding as sharding_lib
from jaxvision import train_state
from jaxvision import writers

REQUIRED = config_lib.REQUIRED


def trainer_schema() -> ml_collections.ConfigDict:
  """Every key the trainer reads, with its default (REQUIRED: no default)."""
  return ml_collections.ConfigDict({
      'project': REQUIRED,
      'seed': 0,
      'total_steps': REQUIRED,     # 0 = evaluate only
      'log_every': 50,             # progress line + train metrics
      'mesh': {'data': -1, 'fsdp': 1, 'model': 1},
      'sharding_rules': [list(r) for r in sharding_lib.DEFAULT_RULES],
      'checkpoint': {'every': 1000, 'keep': 3, 'asynchronous': True},
      'optimizer': optim.default_optimizer_config(),
      'schedule': optim.default_schedule_config(),
      'distributed': False,        # call jax.distributed.initialize() (multi-host)
      # A jax.profiler trace of `num_steps` steps from `start_step` (-1 = off) into
      # <workdir>/profile, for TensorBoard's profile plugin / Perfetto.
      'profile': {'start_step': -1, 'num_steps': 5},
      'model': {},
      'input': {},
      'evals': config_lib.FREE_FORM,
  })


def validate_config(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """Trainer keys + the project's own `model`/`input`/`evals` defaults, all checked."""
  if 'project' not in config:
    raise config_lib.ConfigError("missing required config key 'config.project'")
  project = projects.load_project(config.project)
  schema = trainer_schema()
  proj = project.default_config()
  for section in ('model', 'input'):
    schema[section] = proj.get(section, ml_collections.ConfigDict())
  extra = set(proj) - {'model', 'input', 'evals'}
  for key in extra:  # project-level keys (e.g. `init`) that the project reads itself
    schema[key] = proj[key]
  return config_lib.merge_with_defaults(config, schema)


def _check_batch(batch: dict[str, np.ndarray], spec: dict[str, jax.ShapeDtypeStruct],
                 what: str) -> None:
  """Raises a ValueError naming the first field whose shape/dtype breaks the contract."""
  missing = sorted(set(spec) - set(batch))
  if missing:
    raise ValueError(f'{what}: batch lacks field(s) {missing}; the model expects {sorted(spec)}')
  for name, s in spec.items():
    v = batch[name]
    if tuple(v.shape) != tuple(s.shape) or np.dtype(v.dtype) != np.dtype(s.dtype):
      raise ValueError(
          f"{what}: batch field '{name}' has shape {tuple(v.shape)} {np.dtype(v.dtype)} but "
          f'the model expects {tuple(s.shape)} {np.dtype(s.dtype)}')


def _local_spec(spec, process_count):
  return {k: jax.ShapeDtypeStruct((s.shape[0] // process_count,) + tuple(s.shape[1:]), s.dtype)
          for k, s in spec.items()}


class _Preemption:
  """Turns SIGTERM into a flag the loop checks after every step (main thread only)."""

  def __init__(self):
    self.requested = False
    self._previous = None

  def __enter__(self):
    if threading.current_thread() is threading.main_thread():
      self._previous = signal.signal(signal.SIGTERM, self._handle)
    return self

  def _handle(self, signum, frame):
    del signum, frame
    logging.warning('SIGTERM received: saving a checkpoint after this step, then exiting')
    self.requested = True

  def __exit__(self, *exc):
    if self._previous is not None:
      signal.signal(signal.SIGTERM, self._previous)


class NonFiniteLossError(FloatingPointError):
  pass


@dataclasses.dataclass
class Experiment:
  """What `build` derives from a validated config: everything but data and state."""
  config: ml_collections.ConfigDict
  project: Any
  mesh: Any
  rules: Any
  spec: dict[str, jax.ShapeDtypeStruct]   # global batch contract
  batch_size: int
  model: Any
  tx: Any
  schedule: Any
  setup: train_state.StateSetup
  train_step: Any                          # jitted (state, batch) -> (state, metrics)


def build(config: ml_collections.ConfigDict) -> Experiment:
  """Mesh, model, optimizer, sharded-state recipe and the jitted train step."""
  config = validate_config(config)
  project = projects.load_project(config.project)
  total_steps = int(config.total_steps)
  mesh = sharding_lib.make_mesh(dict(config.mesh))
  rules = sharding_lib.normalize_rules(config.sharding_rules)
  logging.info('mesh %s over %d devices (%s)', dict(mesh.shape), mesh.size,
               jax.devices()[0].platform)
  spec = project.batch_spec(config, 'train')
  batch_size = next(iter(spec.values())).shape[0]
  dp = sharding_lib.data_parallel_size(mesh)
  if batch_size % dp:
    raise config_lib.ConfigError(
        f'global batch size {batch_size} is not divisible by the data-parallel mesh size {dp}')

  # ------------------------------------------------------------------ model & optimizer
  model = project.make_model(config.model)
  # Parameters never depend on the batch size: initialise from a batch of one.
  dummy = {k: jax.ShapeDtypeStruct((1,) + tuple(s.shape[1:]), s.dtype) for k, s in spec.items()}
  with jax.set_mesh(mesh), nn.logical_axis_rules(rules):
    abstract_params = jax.eval_shape(
        lambda r, b: nn.meta.unbox(project.init_params(model, r, b)), jax.random.key(0), dummy)
  tx, schedule = optim.make_optimizer(config, abstract_params, total_steps)
  setup = train_state.make_state_setup(model=model, tx=tx, init_params=project.init_params,
                                       dummy_batch=dummy, mesh=mesh, rules=rules)

  batch_shardings = {k: sharding_lib.batch_sharding(mesh, len(s.shape)) for k, s in spec.items()}
  step_fn = train_state.make_train_step(loss_fn=project.loss_fn, model=model, config=config,
                                        tx=tx, schedule=schedule)
  with jax.set_mesh(mesh), nn.logical_axis_rules(rules):
    jit_step = jax.jit(step_fn, in_shardings=(setup.shardings, batch_shardings),
                       out_shardings=(setup.shardings, sharding_lib.replicated(mesh)),
                       donate_argnums=(0,))
  return Experiment(config=config, project=project, mesh=mesh, rules=rules, spec=spec,
                    batch_size=batch_size, model=model, tx=tx, schedule=schedule, setup=setup,
                    train_step=jit_step)


def train(config: ml_collections.ConfigDict, workdir: str) -> dict[str, Any]:
  """Runs (or resumes) one experiment; returns {'train': {step: metrics}, 'eval': ...}."""
  # ----------------------------------------------------------------- config & logging
  config = validate_config(config)
  if config.distributed:
    jax.distributed.initialize()
  project = projects.load_project(config.project)
  os.makedirs(workdir, exist_ok=True)
  pi, pc = jax.process_index(), jax.process_count()
  if pi == 0:
    with open(os.path.join(workdir, 'config.json'), 'w') as f:
      f.write(config.to_json_best_effort(indent=2))
  writer = writers.make_writer(workdir, pi)
  logging.info('config:\n%s', config)
  total_steps = int(config.total_steps)
  if total_steps < 0:
    raise config_lib.ConfigError(f'config.total_steps must be >= 0, got {total_steps}')

  exp = build(config)
  project, mesh, rules, spec, setup = exp.project, exp.mesh, exp.rules, exp.spec, exp.setup
  model, batch_size = exp.model, exp.batch_size

  # ------------------------------------------------------------------------- input
  train_iter = None
  if total_steps > 0:
    train_ds = project.make_dataset(config, 'train', seed=config.seed, process_index=pi,
                                    process_count=pc)
    train_iter = iter(train_ds)

  # ------------------------------------------------- state: restore or initialise
  ckpt = checkpoint_lib.Checkpointer(os.path.join(workdir, 'checkpoints'),
                                     every=config.checkpoint.every, keep=config.checkpoint.keep,
                                     asynchronous=config.checkpoint.asynchronous)
  restored = ckpt.restore_latest(setup.abstract_state, train_iter)
  if restored is not None:
    state, start_step = restored
    logging.info('resumed from the checkpoint at step %d in %s', start_step, ckpt.directory)
  else:
    state, start_step = setup.init(jax.random.key(config.seed)), 0
    if hasattr(project, 'load_pretrained'):
      params = project.load_pretrained(jax.device_get(state['params']), config)
      state['params'] = jax.device_put(params, setup.param_shardings)
    logging.info('initialised a new run')
  parameter_overview.log_parameter_overview(state['params'], include_stats=False,
                                            msg='parameters')
  n_params = sum(int(np.prod(x.shape)) for x in jax.tree.leaves(state['params']))
  writer.write_hparams({'num_params': n_params, **_flat_hparams(config)})

  # ------------------------------------------------------------------- evaluators
  ctx = evaluators_lib.EvalContext(model=model, mesh=mesh, rules=rules,
                                   param_shardings=setup.param_shardings, config=config,
                                   workdir=workdir, process_index=pi, process_count=pc)
  evaluators = evaluators_lib.for_project(project, config, ctx)
  summaries: dict[str, Any] = {'train': {}, 'eval': {}, 'preempted': False}

  def run_evals(step: int, final: bool) -> None:
    for ev in evaluators:
      if final or (ev.every and step % ev.every == 0):
        t0 = time.time()
        results = {f'{ev.name}/{k}': float(v) for k, v in ev.run(state['params']).items()}
        results[f'{ev.name}/seconds'] = time.time() - t0
        writer.write_scalars(step, results)
        summaries['eval'].setdefault(step, {}).update(results)

  if total_steps == 0:
    run_evals(start_step, final=True)
    writer.flush()
    ckpt.close()
    return summaries

  local_spec = _local_spec(spec, pc)
  jit_step = exp.train_step

  # ------------------------------------------------------------------------- loop
  pending: list[tuple[int, Any]] = []   # (step, device metrics) not yet checked on host
  last_log = (time.time(), start_step)
  step = start_step

  def check_pending() -> dict[str, float] | None:
    """Fetches pending metrics; raises on a non-finite loss; returns the newest."""
    newest = None
    for s, m in jax.device_get(pending):
      if not bool(m['finite']):
        raise NonFiniteLossError(
            f'non-finite loss or gradient at step {s} (loss={float(m["loss"])}); stopping. '
            f'The parameters of step {s - 1} were kept and nothing was saved after it; '
            f'the newest checkpoint on disk is step {ckpt.latest_step()}')
      newest = (s, m)
    pending.clear()
    return newest

  logging.info('training from step %d to %d', start_step, total_steps)
  try:
    with _Preemption() as preemption:
      while step < total_steps:
        if step == config.profile.start_step:
          jax.profiler.start_trace(os.path.join(workdir, 'profile'))
        local_batch = next(train_iter)
        _check_batch(local_batch, local_spec, f'train batch for step {step + 1}')
        with jax.set_mesh(mesh), nn.logical_axis_rules(rules):
          batch = sharding_lib.host_batch_to_global(local_batch, mesh)
          state, metrics = jit_step(state, batch)
        step += 1
        pending.append((step, metrics))
        if config.profile.start_step >= 0 and step == config.profile.start_step + \
            config.profile.num_steps:
          jax.block_until_ready(metrics)
          jax.profiler.stop_trace()
        is_last = step == total_steps
        will_save = ckpt.should_save(step) or is_last or preemption.requested
        if step % config.log_every == 0 or will_save or is_last:
          newest = check_pending()
          if newest is not None and (step % config.log_every == 0 or is_last):
            now = time.time()
            steps_per_sec = (step - last_log[1]) / max(now - last_log[0], 1e-9)
            values = {k: float(v) for k, v in newest[1].items() if k != 'finite'}
            values.update(steps_per_sec=steps_per_sec,
                          examples_per_sec=steps_per_sec * batch_size)
            eta = (total_steps - step) / max(steps_per_sec, 1e-9)
            logging.info('step %d/%d: loss %.5g, %.2f steps/s, %.1f examples/s, ETA %s',
                         step, total_steps, values['loss'], steps_per_sec,
                         steps_per_sec * batch_size, _hms(eta))
            writer.write_scalars(step, values)
            summaries['train'][step] = values
            last_log = (time.time(), step)
        if will_save:
          ckpt.save(step, state, train_iter, force=is_last or preemption.requested)
        run_evals(step, final=is_last)
        if preemption.requested:
          ckpt.wait()
          logging.warning('saved the checkpoint at step %d after SIGTERM; exiting', step)
          summaries['preempted'] = True
          break
  finally:
    # Whatever stopped the loop, finish the saves already started (all of good
    # states) and the metric writes, so an error loses nothing that was logged.
    writer.flush()
    ckpt.close()
  summaries['final_step'] = step
  return summaries


def _hms(seconds: float) -> str:
  seconds = int(seconds)
  return f'{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}'


def _flat_hparams(config: ml_collections.ConfigDict) -> dict[str, Any]:
  flat = {}

  def walk(prefix, node):
    for k, v in node.items():
      key = f'{prefix}{k}'
      if isinstance(v, (dict, ml_collections.ConfigDict)):
        walk(key + '.', v)
      else:
        flat[key] = v if isinstance(v, (int, float, str, bool)) else json.dumps(v, default=str)

  walk('', config)
  return flat


# ------------------------------------------------------------------------ command line
class _DropLibraryChatter(logging.logging.Filter):
  """Keeps orbax's per-save INFO lines (dozens per checkpoint) out of the run log."""

  def filter(self, record):
    return record.levelno >= logging.WARNING or '/orbax/' not in record.pathname


def run_main():
  """`python -m jaxvision.train` / the `jaxvision-train` console script.

  Flags are defined here, not at import, so `import jaxvision.train` defines none.
  """
  config_flag = config_flags.DEFINE_config_file(
      'config', None, 'experiment config file (path.py[:arg])', lock_config=True)
  workdir_flag = flags.DEFINE_string('workdir', None, 'where checkpoints and metrics go')

  def main(argv):
    if len(argv) > 1:
      raise app.UsageError(f'unexpected arguments: {argv[1:]}')
    if config_flag.value is None or not workdir_flag.value:
      raise app.UsageError('--config and --workdir are required')
    logging.get_absl_handler().addFilter(_DropLibraryChatter())
    summaries = train(config_flag.value, workdir_flag.value)
    if summaries.get('preempted'):
      sys.exit(128 + signal.SIGTERM)

  app.run(main)


if __name__ == '__main__':
  run_main()
