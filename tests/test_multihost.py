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
import signal
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


def test_a_forgotten_variable_fails_with_one_line_naming_it(tmp_path):
  env = _env(2, JAX_COORDINATOR_ADDRESS=f'localhost:{_free_port()}', JAX_PROCESS_ID='0')
  p = subprocess.run(_command(str(tmp_path / 'wd'), '--config.distributed=True'), cwd=REPO,
                     env=env, capture_output=True, text=True, timeout=300)
  assert p.returncode == 1, p.stderr[-2000:]
  errors = [line for line in p.stderr.splitlines() if 'error:' in line.lower()]
  assert len(errors) == 1 and 'Traceback' not in p.stderr, p.stderr[-2000:]
  assert errors[0].startswith('jaxvision.train: error: --config.distributed=True needs '
                              'JAX_NUM_PROCESSES'), errors


@pytest.mark.parametrize('variable,value,message', [
    ('JAX_NUM_PROCESSES', 'two', "JAX_NUM_PROCESSES='two' must be an integer >= 1"),
    ('JAX_PROCESS_ID', '2', 'JAX_PROCESS_ID=2 must be below JAX_NUM_PROCESSES=2'),
    ('JAX_COORDINATOR_ADDRESS', 'localhost', 'must be host:port'),
    ('JAXVISION_HEARTBEAT_TIMEOUT_S', '0', 'must be an integer >= 1'),
])
def test_malformed_environment_is_named(monkeypatch, variable, value, message):
  from jaxvision import distributed  # pylint: disable=g-import-not-at-top
  monkeypatch.setenv('JAX_COORDINATOR_ADDRESS', 'localhost:1234')
  monkeypatch.setenv('JAX_NUM_PROCESSES', '2')
  monkeypatch.setenv('JAX_PROCESS_ID', '1')
  monkeypatch.setenv(variable, value)
  with pytest.raises(distributed.DistributedError, match=message):
    distributed.settings()
  monkeypatch.setenv(variable, {'JAX_NUM_PROCESSES': '2', 'JAX_PROCESS_ID': '1',
                                'JAX_COORDINATOR_ADDRESS': 'localhost:1234',
                                'JAXVISION_HEARTBEAT_TIMEOUT_S': '7'}[variable])
  s = distributed.settings()
  assert (s['coordinator_address'], s['num_processes'], s['process_id']) == (
      'localhost:1234', 2, 1)


def _wait_for_step(workdir: str, step: int, procs, timeout: float = 400) -> None:
  deadline = time.time() + timeout
  while time.time() < deadline:
    if any(p.poll() is not None for p in procs):
      raise AssertionError('a process ended early:\n' + _log(procs[0])[-2000:])
    if max(train_losses(workdir), default=0) >= step:
      return
    time.sleep(0.2)
  raise AssertionError(f'step {step} not reached in {timeout} s')


@pytest.mark.slow
def test_sigkill_of_one_process_stops_the_other_and_the_rerun_resumes(tmp_path):
  """Kill process 1 mid-run: process 0 exits within the heartbeat bound (10 s here) with
  a message naming the cause; the same command then resumes from the last checkpoint and ends
  where an uninterrupted 1-process run ends."""
  wd, ref = str(tmp_path / 'wd'), str(tmp_path / 'ref')
  flags = ('--config.total_steps=400', '--config.schedule.type=constant',
           '--config.checkpoint.every=2')
  procs = start(2, wd, *flags, log_dir=str(tmp_path), JAXVISION_HEARTBEAT_TIMEOUT_S='10')
  try:
    _wait_for_step(wd, 3, procs)
    procs[1].send_signal(signal.SIGKILL)
    t0 = time.time()
    procs[0].wait(timeout=90)
    elapsed = time.time() - t0
  finally:
    for p in procs:
      if p.poll() is None:
        p.kill()
  log0 = _log(procs[0])
  assert procs[0].returncode != 0
  assert elapsed < 60, elapsed
  # Either a collective with the dead peer fails at once (gloo: connection reset), which
  # the binary reports in one line, or JAX's coordination service stops the survivor at
  # the heartbeat timeout (from a C++ thread: JAX's own message naming the dead task).
  assert ('jaxvision.train: error: another process of this run stopped' in log0 or
          'stopped sending heartbeats' in log0), log0[-3000:]
  reached = max(train_losses(wd))
  saved = checkpoint_lib.Checkpointer(os.path.join(wd, 'checkpoints'), every=2,
                                      keep=3).latest_step()
  assert saved is not None and saved <= reached
  end = saved + 2
  # Rerun (same command, fewer total steps: the constant schedule does not depend on
  # it) next to an uninterrupted 1-process reference of `end` steps.
  procs = (start(2, wd, *flags, f'--config.total_steps={end}', log_dir=str(tmp_path)) +
           start(1, ref, *flags, f'--config.total_steps={end}', log_dir=str(tmp_path)))
  logs = finish(procs)
  assert f'resumed from the checkpoint at step {saved}' in logs[0]
  l_ref = train_losses(ref)
  resumed = [r for r in writers.read_metrics(wd) if 'loss' in r][-2:]
  assert [r['step'] for r in resumed] == [end - 1, end]
  np.testing.assert_allclose([r['loss'] for r in resumed], [l_ref[end - 1], l_ref[end]],
                             rtol=1e-5)
  assert_params_equal(ref, wd)


@pytest.mark.slow
def test_sigterm_to_one_process_stops_both_at_the_same_saved_step(tmp_path):
  """A preemption notice to process 1 only: JAX's preemption sync point makes both
  processes save the same step and exit with 143 (128 + SIGTERM)."""
  wd = str(tmp_path / 'wd')
  procs = start(2, wd, '--config.total_steps=400', '--config.schedule.type=constant',
                '--config.checkpoint.every=1000', log_dir=str(tmp_path))
  try:
    _wait_for_step(wd, 3, procs)
    procs[1].send_signal(signal.SIGTERM)
    for p in procs:
      p.wait(timeout=120)
  finally:
    for p in procs:
      if p.poll() is None:
        p.kill()
  logs = [_log(p) for p in procs]
  assert [p.returncode for p in procs] == [143, 143], logs[0][-3000:]
  saved = checkpoint_lib.Checkpointer(os.path.join(wd, 'checkpoints'), every=1000,
                                      keep=3).all_steps()
  assert len(saved) == 1 and 3 <= saved[0] < 400, saved
  for log in logs:
    assert f'saved the checkpoint at step {saved[0]} after SIGTERM' in log
