r"""The few-shot protocol of FroFA (Sec. 4): methods x shots x seeds, swept on val.

  python -m jaxvision.projects.frofa.study \
      --config=experiments/frofa/digits_fewshot.py:backbone=vgg --sweep=digits \
      --shots=1,5 --seeds=5 --methods=none,brightness,brightness_c,brightness_c2,bc2_pc \
      --out=results/frofa_digits_vgg.json

For every method (a preset of `presets.py`; 'none' is the plain MAP head) and every
hyper-parameter setting of the sweep (lr x steps x batch x wd, `SWEEPS`), the head is
trained once per (shots, seed) on the k-shot set drawn with that seed, through the
binary's own `jaxvision.train.build` and train step (one compilation per setting and
shot count; with --fast, the default, all steps of a run are one jitted scan).  Per (method, shots) the setting with the best mean val accuracy is kept
and its test accuracy reported as mean ± std over seeds.  The closed-form linear probe
is fitted on the same k-shot sets, its l2 picked on val the same way.  Writes JSON and
prints a markdown table.
"""

from __future__ import annotations

import itertools
import json
import os
import time
from typing import Any

from absl import app
from absl import flags
from absl import logging
import jax
import jax.numpy as jnp
from ml_collections import config_flags
import numpy as np

from jaxvision import sharding as sharding_lib
from jaxvision import train as train_lib
from jaxvision import train_state
from jaxvision.metrics import linear_probe
from jaxvision.projects.frofa import data
from jaxvision.projects.frofa import presets

# The paper's sweep (Sec. 4, "chosen on a validation split") and a CPU-sized one.
SWEEPS = {
    'paper': {'batch_size': (32, 64, 128, 256, 512), 'lr': (0.01, 0.03, 0.06, 0.1),
              'steps': (1000, 2000, 4000, 8000, 16000), 'wd': (0.01, 1e-3, 1e-4, 0.0)},
    'digits': {'batch_size': (32,), 'lr': (1e-3, 3e-3), 'steps': (500,), 'wd': (1e-4,)},
    'single': {'batch_size': (32,), 'lr': (1e-3,), 'steps': (500,), 'wd': (1e-4,)},
    'cpu': {'batch_size': (32,), 'lr': (1e-3,), 'steps': (300,), 'wd': (1e-4,)},
}
L2_GRID = tuple(2.0 ** k for k in range(-10, 21, 2))


def _settings(sweep: dict[str, tuple]) -> list[dict[str, Any]]:
  keys = ('batch_size', 'lr', 'steps', 'wd')
  return [dict(zip(keys, v)) for v in itertools.product(*(sweep[k] for k in keys))]


def _configure(base, method: str, setting: dict[str, Any], shots: int, seed: int):
  c = base.copy_and_resolve_references()
  c.augment = presets.get(method)
  c.input.batch_size = setting['batch_size']
  c.total_steps = setting['steps']
  c.schedule.base_lr = setting['lr']
  c.optimizer.weight_decay = setting['wd']
  c.input.shots, c.input.fewshot_seed, c.seed = shots, seed, seed
  return c


def _accuracy_fn(exp):
  @jax.jit
  def acc(params, feats, labels):
    logits = exp.model.apply({'params': params}, feats, train=False)
    return jnp.mean(jnp.argmax(logits, -1) == labels)
  return acc


def train_and_eval(exp, config, evals) -> dict[str, float]:
  """Trains a fresh head for `config` with the prebuilt experiment; val/test accuracy.

  The binary's loop, step by step through the grain pipeline (`fast=False` in run_study).
  """
  ds = exp.project.make_dataset(config, 'train', seed=config.seed, process_index=0,
                                process_count=1)
  it = iter(ds)
  state = exp.setup.init(jax.random.key(config.seed))
  with jax.set_mesh(exp.mesh):
    for _ in range(config.total_steps):
      batch = sharding_lib.host_batch_to_global(next(it), exp.mesh)
      state, metrics = exp.train_step(state, batch)
  if not bool(metrics['finite']):
    raise FloatingPointError(f'non-finite loss training {config.augment}')
  return _evaluate(_accuracy_fn(exp), state['params'], evals)


def _evaluate(acc, params, evals):
  """{role: accuracy} with `acc = _accuracy_fn(exp)` (one compilation per experiment)."""
  return {role: float(acc(params, jnp.asarray(f), jnp.asarray(y)))
          for role, (f, y) in evals.items()}


def make_fast_trainer(exp, config):
  """All `total_steps` train steps in one jitted `lax.scan` (the k-shot set lives on
  the device; each step's batch is drawn uniformly with replacement from it).

  The same train step as the binary (`train_state.make_train_step` with the project's
  loss, FroFA included); only batch sampling differs from the grain pipeline's epochs.
  Returns run(seed, train_set) -> params.
  """
  step_fn = train_state.make_train_step(loss_fn=exp.project.loss_fn, model=exp.model,
                                        config=exp.config, tx=exp.tx, schedule=exp.schedule)
  steps, bs = int(config.total_steps), int(config.input.batch_size)

  @jax.jit
  def run_steps(state, feats, labels, key):
    def body(state, k):
      idx = jax.random.randint(k, (bs,), 0, feats.shape[0])
      state, metrics = step_fn(state, {'features': feats[idx], 'label': labels[idx]})
      return state, metrics['finite']
    state, finite = jax.lax.scan(body, state, jax.random.split(key, steps))
    return state['params'], jnp.all(finite)

  def run(seed, train_set):
    state = exp.setup.init(jax.random.key(seed))
    with jax.set_mesh(exp.mesh):
      params, finite = run_steps(state, jnp.asarray(train_set['features']),
                                 jnp.asarray(train_set['label']),
                                 jax.random.key(seed + 10_000))
    if not bool(finite):
      raise FloatingPointError(f'non-finite loss or gradient training {config.augment}')
    return params
  return run


def _pool(f):
  return f.reshape(f.shape[0], -1, f.shape[-1]).mean(1)


def linear_probe_results(input_cfg, shots_list, seeds, evals) -> dict[int, dict[str, Any]]:
  pool = data.load_role(input_cfg, 'train')
  out = {}
  for shots in shots_list:
    per_l2 = {l2: {'val': {}, 'test': {}} for l2 in L2_GRID}
    for seed in seeds:
      idx = fewshot.fewshot_indices(pool['label'], shots, seed, input_cfg.num_classes)
      cache = linear_probe.fit(_pool(pool['features'][idx]), pool['label'][idx],
                               input_cfg.num_classes)
      for l2 in L2_GRID:
        for role, (f, y) in evals.items():
          per_l2[l2][role][seed] = linear_probe.accuracy(cache, _pool(f), y, l2)
    best = max(L2_GRID, key=lambda l2: np.mean(list(per_l2[l2]['val'].values())))
    out[shots] = {'setting': {'l2': best}, 'val': fewshot.summarize(per_l2[best]['val']),
                  'test': fewshot.summarize(per_l2[best]['test']),
                  'test_per_seed': per_l2[best]['test']}
  return out


def run_study(base, *, methods, shots_list, seeds, sweep, fast=True) -> dict[str, Any]:
  base = train_lib.validate_config(base)
  evals = {role: (d['features'], d['label']) for role in ('val', 'test')
           for d in [data.load_role(base.input, role)]}
  results: dict[str, Any] = {'config': json.loads(base.to_json_best_effort()),
                             'sweep': sweep, 'seeds': list(seeds), 'methods': {}}
  for method in methods:
    per_setting = []
    for setting in _settings(sweep):
      t0 = time.time()
      exp = train_lib.build(_configure(base, method, setting, shots_list[0], seeds[0]))
      run = make_fast_trainer(exp, exp.config) if fast else None
      acc = _accuracy_fn(exp)
      runs = {}
      for shots in shots_list:
        for seed in seeds:
          cfg = _configure(base, method, setting, shots, seed)
          if fast:
            params = run(seed, data.fewshot_train(cfg.input))
            runs[(shots, seed)] = _evaluate(acc, params, evals)
          else:
            runs[(shots, seed)] = train_and_eval(exp, cfg, evals)
      per_setting.append((setting, runs))
      logging.info('%s %s: %.1fs', method, setting, time.time() - t0)
    results['methods'][method] = {}
    for shots in shots_list:
      def val_mean(entry, shots=shots):
        return np.mean([entry[1][(shots, s)]['val'] for s in seeds])
      setting, runs = max(per_setting, key=val_mean)
      results['methods'][method][shots] = {
          'setting': setting,
          'val': fewshot.summarize({s: runs[(shots, s)]['val'] for s in seeds}),
          'test': fewshot.summarize({s: runs[(shots, s)]['test'] for s in seeds}),
          'test_per_seed': {s: runs[(shots, s)]['test'] for s in seeds}}
  results['methods']['linear_probe'] = linear_probe_results(base.input, shots_list, seeds,
                                                             evals)
  return results


def markdown_table(results) -> str:
  methods = results['methods']
  shots_list = sorted({int(k) for m in methods.values() for k in m})
  lines = ['| method | ' + ' | '.join(f'{k}-shot test acc. (%)' for k in shots_list) + ' |',
           '|---|' + '---|' * len(shots_list)]
  for name, per_shot in methods.items():
    cells = []
    for k in shots_list:
      r = per_shot.get(k) or per_shot.get(str(k))
      cells.append(f"{100 * r['test']['mean']:.1f} ± {100 * r['test']['std']:.1f}")
    lines.append(f'| {name} | ' + ' | '.join(cells) + ' |')
  return '\n'.join(lines)


_CONFIG = config_flags.DEFINE_config_file('config', None, 'base experiment config',
                                          lock_config=False)
_SWEEP = flags.DEFINE_enum('sweep', 'digits', sorted(SWEEPS), 'hyper-parameter sweep')
_SHOTS = flags.DEFINE_list('shots', ['1', '5'], 'shots per class')
_SEEDS = flags.DEFINE_integer('seeds', 5, 'few-shot seeds 0..n-1')
_METHODS = flags.DEFINE_list('methods', ['none', 'brightness', 'brightness_c',
                                         'brightness_c2', 'bc2_pc'], 'presets.py names')
_OUT = flags.DEFINE_string('out', None, 'write the results JSON here')
_FAST = flags.DEFINE_bool('fast', True, 'all steps of a run in one jitted scan (else the '
                          'grain pipeline step by step)')


def main(argv):
  del argv
  results = run_study(_CONFIG.value, methods=_METHODS.value,
                      shots_list=[int(s) for s in _SHOTS.value],
                      seeds=list(range(_SEEDS.value)), sweep=SWEEPS[_SWEEP.value],
                      fast=_FAST.value)
  table = markdown_table(results)
  print(table)
  if _OUT.value:
    os.makedirs(os.path.dirname(os.path.abspath(_OUT.value)), exist_ok=True)
    with open(_OUT.value, 'w') as f:
      json.dump(results, f, indent=2, default=str)


if __name__ == '__main__':
  app.run(main)
