"""The binary on several local CPU processes (jax.distributed, gloo collectives).

Each process is `python -m jaxvision.train --config.distributed=True` with 2 simulated
CPU devices, told its coordinator (localhost, a free port), process count and id by
the environment, as a cluster would.  The reference is one process with the same
number of devices in all, i.e. the same global mesh: losses, parameters and evaluation
counts must agree to float tolerance, only process 0 writes metrics / TensorBoard /
config.json, and checkpoints written by 2 processes resume on 2 and on 1.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

from jaxvision import checkpoint as checkpoint_lib
from jaxvision import writers

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIG = 'experiments/classification/digits_vit.py:tiny'
# Few steps of the tiny ViT; lr warm-up over 2 so that step 1 already moves the params.
COMMON = ('--config.total_steps=4', '--config.schedule.warmup_steps=2',
          '--config.model.head_zeroinit=False', '--config.checkpoint.asynchronous=False',
          '--config.checkpoint.every=2')
DEVICES = 4   # global devices in every run below


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(('localhost', 0))
    return s.getsockname()[1]


def _env(devices: int, **extra: str) -> dict[str, str]:
  env = dict(os.environ, PYTHONPATH=REPO, TF_CPP_MIN_LOG_LEVEL='3', JAX_PLATFORMS='cpu',
             JAX_NUM_CPU_DEVICES=str(devices), JAX_CPU_COLLECTIVES_IMPLEMENTATION='gloo')
  # conftest's 8 simulated devices would win over JAX_NUM_CPU_DEVICES: drop that flag.
  env['XLA_FLAGS'] = ' '.join(f for f in env.get('XLA_FLAGS', '').split()
                              if not f.startswith('--xla_force_host_platform_device_count'))
  for k in ('JAX_COORDINATOR_ADDRESS', 'JAX_NUM_PROCESSES', 'JAX_PROCESS_ID'):
    env.pop(k, None)
  env.update(extra)
  return env


def _command(workdir: str, *overrides: str) -> list[str]:
  return [sys.executable, '-m', 'jaxvision.train', f'--config={CONFIG}',
          f'--workdir={workdir}', *COMMON, *overrides]


def start(processes: int, workdir: str, *overrides: str, log_dir: str,
          **env_extra: str) -> list[subprocess.Popen]:
  """`processes` copies of the binary (distributed if > 1), DEVICES devices in all."""
  port = _free_port()
  procs = []
  for i in range(processes):
    extra = dict(env_extra)
    flags = list(overrides)
    if processes > 1:
      extra.update(JAX_COORDINATOR_ADDRESS=f'localhost:{port}',
                   JAX_NUM_PROCESSES=str(processes), JAX_PROCESS_ID=str(i))
      flags.append('--config.distributed=True')
    path = os.path.join(log_dir, f'{os.path.basename(workdir)}.{i}.log')
    with open(path, 'w') as log:
      p = subprocess.Popen(_command(workdir, *flags), cwd=REPO, stdout=log,
                           stderr=subprocess.STDOUT, env=_env(DEVICES // processes, **extra))
    p.log_path = path
    procs.append(p)
  return procs


def finish(procs: list[subprocess.Popen], timeout: float = 400) -> list[str]:
  """Waits for all; returns their logs; fails naming the first process that failed."""
  deadline = time.time() + timeout
  for p in procs:
    try:
      p.wait(timeout=max(deadline - time.time(), 1))
    except subprocess.TimeoutExpired:
      for q in procs:
        q.kill()
      raise
  logs = [_log(p) for p in procs]
  for i, (p, log) in enumerate(zip(procs, logs)):
    assert p.returncode == 0, f'process {i} exited with {p.returncode}:\n{log[-3000:]}'
  return logs


def _log(p: subprocess.Popen) -> str:
  with open(p.log_path) as f:
    return f.read()


def train_losses(workdir: str) -> dict[int, float]:
  out = {}
  for r in writers.read_metrics(workdir):
    if 'loss' in r:
      assert r['step'] not in out, f'step {r["step"]} logged twice in {workdir}'
      out[r['step']] = r['loss']
  return out


def eval_record(workdir: str) -> dict[str, float]:
  recs = [r for r in writers.read_metrics(workdir) if 'test/count' in r]
  assert len(recs) == 1, recs
  return recs[0]


def assert_params_equal(a: str, b: str, step: int | None = None) -> None:
  pa, pb = checkpoint_lib.load_params(a, step), checkpoint_lib.load_params(b, step)
  la, lb = _leaves(pa), _leaves(pb)
  assert la.keys() == lb.keys()
  for k in la:
    # The attention key bias adds q.b_k to every logit of a query: softmax cancels it,
    # its gradient is zero in exact arithmetic, and Adam scales the rounding noise left
    # in its place up to +-lr per step, differently for each reduction order.
    if k.endswith('key/bias'):
      continue
    np.testing.assert_allclose(la[k], lb[k], rtol=1e-5, atol=1e-6, err_msg=k)


def _leaves(tree, prefix=''):
  out = {}
  for k, v in tree.items():
    if isinstance(v, dict):
      out.update(_leaves(v, f'{prefix}{k}/'))
    else:
      out[f'{prefix}{k}'] = np.asarray(v)
  return out


@pytest.fixture(scope='module')
def runs(tmp_path_factory):
  """A 1-process and a 2-process run of 4 steps (started together)."""
  root = tmp_path_factory.mktemp('multihost')
  one, two = str(root / 'one'), str(root / 'two')
  procs = start(1, one, log_dir=str(root)) + start(2, two, log_dir=str(root))
  logs = finish(procs)
  return root, one, two, {'one': logs[:1], 'two': logs[1:]}


def test_two_processes_compute_what_one_process_computes(runs):
  _, one, two, logs = runs
  l1, l2 = train_losses(one), train_losses(two)
  assert sorted(l1) == sorted(l2) == [1, 2, 3, 4]
  np.testing.assert_allclose([l2[s] for s in sorted(l2)], [l1[s] for s in sorted(l1)],
                             rtol=1e-5)
  assert abs(l1[4] - l1[1]) > 1e-4   # the steps did train: equality is not trivial
  assert_params_equal(one, two)
  # The final evaluation: every test example counted once over both processes.
  e1, e2 = eval_record(one), eval_record(two)
  assert e2['test/count'] == e1['test/count'] == 360
  np.testing.assert_allclose(e2['test/accuracy'], e1['test/accuracy'], rtol=1e-6)
  np.testing.assert_allclose(e2['test/loss'], e1['test/loss'], rtol=1e-5)


def test_only_process_zero_writes(runs):
  _, _, two, logs = runs
  names = sorted(os.listdir(two))
  assert len([n for n in names if n.startswith('events.out.tfevents')]) == 1, names
  assert 'config.json' in names and 'LOCK' not in names
  with open(os.path.join(two, 'metrics.jsonl')) as f:
    hparams = [line for line in f if '"hparams"' in line]
  assert len(hparams) == 1
  # Both processes trained (and logged) every step; each wrote its own iterator state.
  for log in logs['two']:
    assert 'step 4/4' in log
  data = os.listdir(os.path.join(two, 'checkpoints', '4', 'data'))
  assert sorted(n for n in data if n.startswith('process_')) == [
      'process_0-of-2.json', 'process_1-of-2.json']


@pytest.mark.slow
@pytest.mark.parametrize('processes', [2, 1])
def test_checkpoint_of_two_processes_resumes_on(processes, runs, tmp_path):
  """2 -> 2 and 2 -> 1: continue the 2-process run to step 6; the 1-process reference
  continues too; losses of steps 5-6 and the final params agree."""
  root, one, two, _ = runs
  ref, cont = str(tmp_path / 'ref'), str(tmp_path / 'cont')
  shutil.copytree(one, ref)
  shutil.copytree(two, cont)
  procs = (start(1, ref, '--config.total_steps=6', log_dir=str(tmp_path)) +
           start(processes, cont, '--config.total_steps=6', log_dir=str(tmp_path)))
  log = finish(procs)[1]
  assert 'resumed from the checkpoint at step 4' in log
  l_ref, l_cont = train_losses(ref), train_losses(cont)
  np.testing.assert_allclose([l_cont[5], l_cont[6]], [l_ref[5], l_ref[6]], rtol=1e-5)
  assert_params_equal(ref, cont)
