r"""THE jaxvision training binary: one loop for every method.

  python -m jaxvision.train --config=experiments/classification/digits_vit.py \
      --workdir=/tmp/digits [--config.total_steps=100 ...]

`config.project` names a module under `jaxvision.projects` that supplies the model,
loss, data and evaluators (see `jaxvision/projects/__init__.py`); this file owns the
rest.  It reads top to bottom: config -> mesh -> input -> model & optimizer -> sharded
state (restored from the workdir if a checkpoint exists) -> train step -> evaluators ->
loop.  `total_steps=0` evaluates only; a project of kind `evaluate_only` or
`per_example` (no model to train) goes straight from the mesh to its evaluators.
`train(config, workdir)` is importable and returns the train and eval summaries.
"""

from __future__ import annotations

import dataclasses
import json
import os

# TensorFlow loads only for tfds datasets (the metric writers do not use it); its C++
# INFO lines stay off unless the user set the variable (jaxvision.console quiets the
# Python side).
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '1')

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
from jaxvision import console
from jaxvision import distributed as distributed_lib
from jaxvision import evaluators as evaluators_lib
from jaxvision import optim
from jaxvision import projects
from jaxvision import sharding as sharding_lib
from jaxvision import stages
from jaxvision import train_state
from jaxvision import workdir as workdir_lib
from jaxvision import writers

REQUIRED = config_lib.REQUIRED
# The schema lives in config.py (experiment files and this binary both import it).
trainer_schema = config_lib.trainer_schema
validate_config = config_lib.validate_config


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
  """Turns SIGTERM into a flag the loop reads once per step, where it decides to save
  (main thread only): the step that exits is always the step that was saved.

  With several processes the handler is JAX's (its preemption sync manager, installed
  by `jax.distributed.initialize`), which makes every process stop at the same step
  (`distributed.reached_stop_step`); this one is then not installed."""

  def __init__(self):
    self.requested = False
    self._previous = None

  def __enter__(self):
    if threading.current_thread() is threading.main_thread() and jax.process_count() == 1:
      self._previous = signal.signal(signal.SIGTERM, self._handle)
    return self

  def _handle(self, signum, frame):
    del signum, frame
    logging.warning('SIGTERM received: saving a checkpoint at the end of this (or, if its '
                    'save decision is past, the next) step, then exiting')
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
  mutable: tuple[str, ...] = ()            # the project's mutable variable collections


def build(config: ml_collections.ConfigDict) -> Experiment:
  """Mesh, model, optimizer, sharded-state recipe and the jitted train step."""
  config = validate_config(config)
  project = projects.load_project(config.project)
  if projects.kind_of(project) != projects.TRAINED:
    raise config_lib.ConfigError(
        f'project {config.project!r} is of kind {projects.kind_of(project)!r}: it has no '
        'model or train step to build (train() runs its evaluators directly)')
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
  mutable = tuple(getattr(project, 'mutable', ()))
  ema = train_state.EmaConfig.from_config(config.ema)
  # Parameters never depend on the batch size: initialise from a batch of one.
  dummy = {k: jax.ShapeDtypeStruct((1,) + tuple(s.shape[1:]), s.dtype) for k, s in spec.items()}
  with jax.set_mesh(mesh), nn.logical_axis_rules(rules):
    abstract_vars = jax.eval_shape(
        lambda r, b: nn.meta.unbox(project.init_params(model, r, b)), jax.random.key(0), dummy)
  abstract_params = abstract_vars['params'] if mutable else abstract_vars
  tx, schedule = optim.make_optimizer(config, abstract_params, total_steps)
  setup = train_state.make_state_setup(model=model, tx=tx, init_params=project.init_params,
                                       dummy_batch=dummy, mesh=mesh, rules=rules,
                                       mutable=mutable, ema=ema)

  batch_shardings = {k: sharding_lib.batch_sharding(mesh, len(s.shape)) for k, s in spec.items()}
  step_fn = train_state.make_train_step(loss_fn=project.loss_fn, model=model, config=config,
                                        tx=tx, schedule=schedule, mutable=mutable, ema=ema)
  with jax.set_mesh(mesh), nn.logical_axis_rules(rules):
    jit_step = jax.jit(step_fn, in_shardings=(setup.shardings, batch_shardings),
                       out_shardings=(setup.shardings, sharding_lib.replicated(mesh)),
                       donate_argnums=(0,))
  return Experiment(config=config, project=project, mesh=mesh, rules=rules, spec=spec,
                    batch_size=batch_size, model=model, tx=tx, schedule=schedule, setup=setup,
                    train_step=jit_step, mutable=mutable)


def train(config: ml_collections.ConfigDict, workdir: str) -> dict[str, Any]:
  """Runs (or resumes) one experiment; returns {'train': {step: metrics}, 'eval': ...}."""
  try:
    return _train(config, workdir)
  finally:
    workdir_lib.release(workdir)   # the lock `workdir_lib.claim` took


def _train(config: ml_collections.ConfigDict, workdir: str) -> dict[str, Any]:
  # ----------------------------------------------------------------- config & logging
  config = validate_config(config)
  if config.distributed:   # coordinator, process count and id from the environment
    distributed_lib.initialize()
  project = projects.load_project(config.project)
  os.makedirs(workdir, exist_ok=True)
  pi, pc = jax.process_index(), jax.process_count()
  workdir_lib.claim(workdir, config, pi)   # lock, compare with config.json, write it
  writer = writers.make_writer(workdir, pi)
  logging.info('%s', console.config_summary(config, workdir))
  logging.debug('config:\n%s', config)
  total_steps = int(config.total_steps)
  if total_steps < 0:
    raise config_lib.ConfigError(f'config.total_steps must be >= 0, got {total_steps}')
  if projects.kind_of(project) != projects.TRAINED:
    return _run_without_training(config, project, workdir, writer)

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
      # The fresh sharded params are the target: each loaded leaf is placed with its
      # sharding (no host copy of the whole tree; a no-op for leaves already placed).
      params = project.load_pretrained(state['params'], config)
      state['params'] = jax.device_put(params, setup.param_shardings)
    if config.init.from_workdir:   # multi-stage: sub-trees of an earlier run, sharded
      state, _, names = stages.restore_subtrees(
          state, config.init.from_workdir, list(config.init.restore), config.init.from_step)
      if 'ema' in state and not any(n.startswith('ema/') for n in names):
        state['ema'] = jax.jit(lambda p: train_state.select(p, config.ema.params),
                               out_shardings=setup.shardings['ema'])(state['params'])
    logging.info('initialised a new run')
  n_params = sum(int(np.prod(x.shape)) for x in jax.tree.leaves(state['params']))
  logging.info('%s parameters in %d arrays', f'{n_params:,}', len(jax.tree.leaves(state['params'])))
  if logging.get_verbosity() >= 1:   # the full table with --verbosity=1
    parameter_overview.log_parameter_overview(state['params'], include_stats=False,
                                              msg='parameters')
  writer.write_hparams({'num_params': n_params, **_flat_hparams(config)})

  # ------------------------------------------------------------------- evaluators
  ctx = evaluators_lib.EvalContext(model=model, mesh=mesh, rules=rules,
                                   param_shardings=setup.param_shardings, config=config,
                                   workdir=workdir, process_index=pi, process_count=pc)
  evaluators = evaluators_lib.for_project(project, config, ctx)
  summaries: dict[str, Any] = {'train': {}, 'eval': {}, 'preempted': False}

  def run_evals(step: int, final: bool) -> None:
    variables = None
    for ev in evaluators:
      if final or (ev.every and step % ev.every == 0):
        if variables is None:   # params (EMA ones if asked), or the variables dict
          variables = train_state.eval_variables(state, exp.mutable, config.ema.evaluate)
        _run_one_eval(ev, variables, step, writer, summaries)

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
  bar = console.ProgressBar(total_steps, start_step)
  try:
    with _Preemption() as preemption:
      while step < total_steps:
        ckpt.check()   # an asynchronous save that failed stops the run here, by name
        if step == config.profile.start_step:
          jax.profiler.start_trace(os.path.join(workdir, 'profile'))
        local_batch = next(train_iter)
        _check_batch(local_batch, local_spec, f'train batch for step {step + 1}')
        with jax.set_mesh(mesh), nn.logical_axis_rules(rules):
          batch = sharding_lib.host_batch_to_global(local_batch, mesh)
          state, metrics = jit_step(state, batch)
        step += 1
        pending.append((step, metrics))
        bar.update(step)
        if config.profile.start_step >= 0 and step == config.profile.start_step + \
            config.profile.num_steps:
          jax.block_until_ready(metrics)
          jax.profiler.stop_trace()
        is_last = step == total_steps
        # Read once: a later SIGTERM is seen after the next step; all processes agree.
        stop = distributed_lib.reached_stop_step(step, preemption.requested)
        will_save = ckpt.should_save(step) or is_last or stop
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
          if ckpt.save(step, state, train_iter, force=is_last or stop):
            logging.info('saving the checkpoint of step %d', step)
        run_evals(step, final=is_last)
        if stop:
          ckpt.wait_for(step)
          logging.warning('saved the checkpoint at step %d after SIGTERM; exiting', step)
          summaries['preempted'] = True
          break
  finally:
    bar.close()
    # Whatever stopped the loop, finish the saves already started (all of good
    # states) and the metric writes, so an error loses nothing that was logged.
    writer.flush()
    ckpt.close()
  summaries['final_step'] = step
  return summaries


# ------------------------------------------------------------------ evaluation helpers
def _run_one_eval(ev, variables, step: int, writer, summaries) -> None:
  t0 = time.time()
  results = {f'{ev.name}/{k}': float(v) for k, v in ev.run(variables).items()}
  results[f'{ev.name}/seconds'] = time.time() - t0
  writer.write_scalars(step, results)
  summaries['eval'].setdefault(step, {}).update(results)
  logging.info('eval %s at step %d (%.1f s): %s', ev.name, step, results[f'{ev.name}/seconds'],
               ', '.join(f'{k.split("/", 1)[1]}={v:.4g}' for k, v in results.items()
                         if not k.endswith('/seconds')))


def _run_without_training(config, project, workdir: str, writer) -> dict[str, Any]:
  """Kinds (b) evaluate-only and (c) per-example: the evaluators are the run.

  No model, optimizer, train state or checkpoint of one: the evaluators get
  `run(None)`, the mesh and the workdir (where an inner loop keeps its checkpoints).
  """
  if int(config.total_steps) != 0:
    raise config_lib.ConfigError(
        f'config.total_steps={config.total_steps}: project {config.project!r} is of kind '
        f'{projects.kind_of(project)!r} and trains nothing; set it to 0')
  mesh = sharding_lib.make_mesh(dict(config.mesh))
  rules = sharding_lib.normalize_rules(config.sharding_rules)
  ctx = evaluators_lib.EvalContext(model=None, mesh=mesh, rules=rules, param_shardings=None,
                                   config=config, workdir=workdir,
                                   process_index=jax.process_index(),
                                   process_count=jax.process_count())
  summaries: dict[str, Any] = {'train': {}, 'eval': {}, 'preempted': False}
  try:
    for ev in evaluators_lib.for_project(project, config, ctx):
      _run_one_eval(ev, None, 0, writer, summaries)
  finally:
    writer.flush()
  summaries['final_step'] = 0
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
def run_main():
  """`python -m jaxvision.train` / the `jaxvision-train` console script.

  Flags are defined here, not at import, so `import jaxvision.train` defines none.
  """
  config_flag = config_flags.DEFINE_config_file(
      'config', None, 'experiment config file (path.py[:arg])', lock_config=True)
  workdir_flag = flags.DEFINE_string('workdir', None, 'where checkpoints and metrics go')

  def parse_flags(argv):
    # ml_collections applies `--config.a.b=v` while parsing and raises from deep inside
    # with a long traceback: the user gets one line naming the flag (or the file).
    try:
      rest = flags.FLAGS(argv)
      _ = config_flag.value is None or 'project' in config_flag.value   # loads the file
      return rest
    except Exception as e:  # pylint: disable=broad-except
      _fail(config_lib.flag_error_line(e, argv), status=2)

  def main(argv):
    if len(argv) > 1:
      raise app.UsageError(f'unexpected arguments: {argv[1:]}')
    if config_flag.value is None or not workdir_flag.value:
      raise app.UsageError('--config and --workdir are required')
    console.setup()   # library INFO chatter off unless --verbosity >= 1
    try:
      summaries = train(config_flag.value, workdir_flag.value)
    except USER_ERRORS as e:   # a refusal with its reason, not a traceback
      _fail(distributed_lib.peer_failure(e) or str(e))
    except Exception as e:  # pylint: disable=broad-except
      message = distributed_lib.peer_failure(e)   # a dead peer process: say so, in one line
      if message is None:
        raise
      _fail(message)
    if summaries.get('preempted'):
      sys.exit(128 + signal.SIGTERM)

  app.run(main, flags_parser=parse_flags)


# Errors that say what is wrong and how to fix it: printed as one line, exit status 1.
USER_ERRORS = (config_lib.ConfigError, checkpoint_lib.CheckpointError, workdir_lib.WorkdirError)


def _fail(message: str, status: int = 1) -> None:
  sys.stderr.write(f'jaxvision.train: error: {message}\n')
  sys.stderr.flush()
  sys.exit(status)


if __name__ == '__main__':
  run_main()
