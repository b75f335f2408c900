r"""The few-shot protocol of FroFA (Sec. 4) as runs of the binary: a thin driver.

  python -m jaxvision.projects.frofa.study \
      --config=experiments/frofa/digits_fewshot.py:backbone=vgg --sweep=cpu \
      --shots=1,5 --seeds=5 --methods=none,brightness,brightness_c,brightness_c2,bc2_pc \
      --workdir=workdirs/frofa_study_vgg --out=results/frofa/digits_vgg.json

For every method (a preset of `presets.py`; 'none' is the plain MAP head), every
hyper-parameter setting of the sweep (lr x steps x batch x wd, `SWEEPS`) and every shot
count, ONE run of the binary trains the heads of all few-shot seeds at once
(`seeds=N` of the experiment file: N vmapped heads, `replicas.py`):

  python -m jaxvision.train --config=<file>:<arg>,frofa=M,shots=K,seeds=N,lr=..,steps=..,
      batch_size=..,wd=.. --workdir=<workdir>/<M>_<K>shot_<setting>

The driver runs that through `jaxvision.train.train` in this process (`--launch=inline`,
the default) or as a subprocess (`--launch=subprocess`), skips runs whose workdir
already holds their final evaluation, and reads every run's per-seed metrics back from
its `metrics.jsonl`.  Per (method, shots) the setting with the best mean val accuracy is
kept and its test accuracy reported as mean ± std over seeds, with the paired
difference to the plain head (wins, paired t-test).  The linear probes ('linear_probe':
l2 picked on val, mean tokens; 'linear_probe_bv': big_vision's fixed l2 on the
backbone's pre-logits) come from the same runs' evaluators.  The experiment file must
accept the arguments frofa, shots, seeds, lr, steps, batch_size and wd.
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import time
from typing import Any, Sequence

from absl import app
from absl import flags
from absl import logging
from ml_collections.config_flags import config_flags
import numpy as np
import scipy.stats

from jaxvision import train as train_lib
from jaxvision import writers
from jaxvision.data import fewshot

# The paper's sweep (Sec. 4, "chosen on a validation split") and CPU-sized ones.
SWEEPS = {
    'paper': {'batch_size': (32, 64, 128, 256, 512), 'lr': (0.01, 0.03, 0.06, 0.1),
              'steps': (1000, 2000, 4000, 8000, 16000), 'wd': (0.01, 1e-3, 1e-4, 0.0)},
    'digits': {'batch_size': (32,), 'lr': (1e-3, 3e-3), 'steps': (500,), 'wd': (1e-4,)},
    'single': {'batch_size': (32,), 'lr': (1e-3,), 'steps': (500,), 'wd': (1e-4,)},
    'cpu': {'batch_size': (32,), 'lr': (1e-3,), 'steps': (300,), 'wd': (1e-4,)},
}
PROBES = ('linear_probe', 'linear_probe_bv')


def settings(sweep: dict[str, Sequence]) -> list[dict[str, Any]]:
  keys = ('batch_size', 'lr', 'steps', 'wd')
  return [dict(zip(keys, v)) for v in itertools.product(*(sweep[k] for k in keys))]


def run_arg(base_arg: str, method: str, shots: int, num_seeds: int, setting) -> str:
  parts = [base_arg] if base_arg else []
  parts += [f'frofa={method}', f'shots={shots}', f'seeds={num_seeds}',
            f"lr={setting['lr']:g}", f"steps={setting['steps']}",
            f"batch_size={setting['batch_size']}", f"wd={setting['wd']:g}"]
  return ','.join(parts)


def run_name(method: str, shots: int, setting) -> str:
  return (f"{method}_{shots}shot_lr{setting['lr']:g}_steps{setting['steps']}"
          f"_bs{setting['batch_size']}_wd{setting['wd']:g}")


def command(config_file: str, arg: str, workdir: str, overrides: dict[str, Any]) -> list[str]:
  return ['python', '-m', 'jaxvision.train', f'--config={config_file}:{arg}',
          f'--workdir={workdir}'] + [f'--config.{k}={v}' for k, v in overrides.items()]


def final_metrics(workdir: str) -> dict[str, float] | None:
  """The evaluation record of a finished run (its last step), or None."""
  config_path = os.path.join(workdir, 'config.json')
  if not os.path.exists(config_path):
    return None
  with open(config_path) as f:
    total = int(json.load(f)['total_steps'])
  merged: dict[str, float] = {}
  for r in writers.read_metrics(workdir):
    if r['step'] == total:
      merged.update(r)
  return merged if 'test/accuracy' in merged else None


def launch(config_file: str, arg: str, workdir: str, overrides: dict[str, Any],
           how: str) -> dict[str, float]:
  """Runs (or finds) one run of the binary; returns its final evaluation record."""
  done = final_metrics(workdir)
  if done is not None:
    logging.info('already finished: %s', workdir)
    return done
  if os.path.exists(os.path.join(workdir, 'checkpoints')):
    raise RuntimeError(f'{workdir} holds an unfinished run; remove it to rerun')
  if how == 'subprocess':
    cmd = [sys.executable] + command(config_file, arg, workdir, overrides)[1:]
    subprocess.run(cmd, check=True)
  elif how == 'inline':
    config = config_flags.ConfigFileFlagParser(name='config').parse(f'{config_file}:{arg}')
    for key, value in overrides.items():
      config.update_from_flattened_dict({key: value})
    train_lib.train(config, workdir)
  else:
    raise ValueError(f"launch={how!r}; valid: 'inline', 'subprocess'")
  done = final_metrics(workdir)
  if done is None:
    raise RuntimeError(f'{workdir}: the run finished without a final evaluation')
  return done


def _per_seed(record, prefix: str, seeds) -> dict[int, float]:
  return {s: float(record[f'{prefix}/accuracy/seed_{s}']) for s in seeds}


def run_study(config_file: str, base_arg: str = '', *, methods, shots_list, num_seeds: int,
              sweep, workdir: str, overrides: dict[str, Any] | None = None,
              how: str = 'inline') -> dict[str, Any]:
  """Launches/reads every run of the study; the results dict (see the module doc)."""
  overrides = dict(overrides or {})
  seeds = list(range(num_seeds))
  results: dict[str, Any] = {'config': f'{config_file}:{base_arg}', 'overrides': overrides,
                             'sweep': sweep, 'seeds': seeds, 'methods': {}, 'runs': {}}
  probes: dict[str, dict] = {p: {} for p in PROBES}
  for method in methods:
    results['methods'][method] = {}
    for shots in shots_list:
      candidates = []
      for setting in settings(sweep):
        arg = run_arg(base_arg, method, shots, num_seeds, setting)
        wd = os.path.join(workdir, run_name(method, shots, setting))
        t0 = time.time()
        record = launch(config_file, arg, wd, overrides, how)
        cmd = ' '.join(command(config_file, arg, wd, overrides))
        results['runs'][wd] = {'command': cmd, 'seconds': time.time() - t0}
        candidates.append((setting, record, cmd))
        for p in PROBES:
          if f'{p}/accuracy' in record and shots not in probes[p]:
            probes[p][shots] = {'test_per_seed': _per_seed(record, p, seeds),
                                'setting': {'l2': record[f'{p}/l2']}, 'command': cmd}
      setting, record, cmd = max(
          candidates, key=lambda c: np.mean(list(_per_seed(c[1], 'val', seeds).values())))
      test = _per_seed(record, 'test', seeds)
      results['methods'][method][shots] = {
          'setting': setting, 'command': cmd,
          'val': fewshot.summarize(_per_seed(record, 'val', seeds)),
          'test': fewshot.summarize(test), 'test_per_seed': test}
  for p, per_shot in probes.items():
    if per_shot:
      results['methods'][p] = {k: dict(v, test=fewshot.summarize(v['test_per_seed']))
                               for k, v in per_shot.items()}
  return results


def paired(results, method: str, shots, baseline: str = 'none') -> dict[str, float] | None:
  """Mean paired test difference to `baseline`, wins and the paired t-test p-value."""
  methods = results['methods']
  if method == baseline or baseline not in methods:
    return None
  get = lambda m: {int(s): v for s, v in
                   (methods[m].get(shots) or methods[m][str(shots)])['test_per_seed'].items()}
  a, b = get(method), get(baseline)
  common = sorted(set(a) & set(b))
  d = np.array([a[s] - b[s] for s in common])
  p = float(scipy.stats.ttest_rel([a[s] for s in common], [b[s] for s in common]).pvalue) \
      if len(common) > 1 and np.any(d != d[0]) else float('nan')
  return {'delta': float(d.mean()), 'wins': int(np.sum(d > 0)), 'n': len(common), 'p': p}


def markdown_table(results) -> str:
  methods = results['methods']
  shots_list = sorted({int(k) for m in methods.values() for k in m})
  lines = ['| method | ' + ' | '.join(f'{k}-shot test acc. (%)' for k in shots_list) + ' |',
           '|---|' + '---|' * len(shots_list)]
  for name, per_shot in methods.items():
    cells = []
    for k in shots_list:
      r = per_shot.get(k) or per_shot.get(str(k))
      cell = f"{100 * r['test']['mean']:.1f} ± {100 * r['test']['std']:.1f}"
      d = paired(results, name, k)
      if d:
        cell += f" (Δ {100 * d['delta']:+.1f}, {d['wins']}/{d['n']}, p {d['p']:.2g})"
      cells.append(cell)
    lines.append(f'| {name} | ' + ' | '.join(cells) + ' |')
  return '\n'.join(lines)


_CONFIG = flags.DEFINE_string('config', None, 'experiment file[:arg] (the runs add frofa, '
                              'shots, seeds, lr, steps, batch_size, wd to arg)')
_SWEEP = flags.DEFINE_enum('sweep', 'digits', sorted(SWEEPS), 'hyper-parameter sweep')
_SHOTS = flags.DEFINE_list('shots', ['1', '5'], 'shots per class')
_SEEDS = flags.DEFINE_integer('seeds', 5, 'few-shot seeds 0..n-1 (one vmapped run)')
_METHODS = flags.DEFINE_list('methods', ['none', 'brightness', 'brightness_c',
                                         'brightness_c2', 'bc2_pc'], 'presets.py names')
_WORKDIR = flags.DEFINE_string('workdir', None, 'one sub-folder per run')
_OUT = flags.DEFINE_string('out', None, 'write the results JSON here')
_LAUNCH = flags.DEFINE_enum('launch', 'inline', ['inline', 'subprocess'],
                            'train.train in this process, or python -m jaxvision.train')
_SET = flags.DEFINE_multi_string('set', [], 'config override key=value for every run '
                                 '(e.g. input.cache_root=/data/cache)')


def main(argv):
  del argv
  if not _CONFIG.value or not _WORKDIR.value:
    raise app.UsageError('--config and --workdir are required')
  config_file, _, base_arg = _CONFIG.value.partition(':')
  overrides = dict(item.split('=', 1) for item in _SET.value)
  results = run_study(config_file, base_arg, methods=_METHODS.value,
                      shots_list=[int(s) for s in _SHOTS.value], num_seeds=_SEEDS.value,
                      sweep=SWEEPS[_SWEEP.value], workdir=_WORKDIR.value,
                      overrides=overrides, how=_LAUNCH.value)
  print(markdown_table(results))
  if _OUT.value:
    os.makedirs(os.path.dirname(os.path.abspath(_OUT.value)), exist_ok=True)
    with open(_OUT.value, 'w') as f:
      json.dump(results, f, indent=2, default=str)


if __name__ == '__main__':
  app.run(main)
