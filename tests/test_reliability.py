"""A preempted or crashed run loses no work and says what happened (issue 10, items 1-9).

In-process runs of the small digits ViT (seconds each); the signal tests send SIGTERM to
this process from inside the loop (an evaluator, a metric write, a save), so where it
lands is deterministic.
"""

from __future__ import annotations

import errno
import logging
import os
import signal
import subprocess
import sys
import threading

import jax
import pytest

from jaxvision import checkpoint
from jaxvision import config as config_lib
from jaxvision import evaluators as evaluators_lib
from jaxvision import projects
from jaxvision import train
from jaxvision import workdir as workdir_lib
from jaxvision import writers
from tests import helpers


def _steps(workdir):
  return checkpoint.Checkpointer(os.path.join(workdir, 'checkpoints'), every=1, keep=0
                                 ).all_steps()


def _sigterm_once(at_call):
  calls = []

  def maybe_kill():
    calls.append(1)
    if len(calls) == at_call:
      os.kill(os.getpid(), signal.SIGTERM)
  return maybe_kill


# ------------------------------------------------------------------ 1. SIGTERM
@pytest.mark.parametrize('where', ['evaluator', 'logging', 'save'])
def test_sigterm_anywhere_in_a_step_leaves_a_checkpoint_of_the_exit_step(
    tmp_path, monkeypatch, where):
  assert threading.current_thread() is threading.main_thread()   # the handler needs it
  kill = _sigterm_once(at_call=2)
  if where == 'evaluator':
    make = evaluators_lib.for_project

    def for_project(project, config, ctx):
      evs = make(project, config, ctx)
      for ev in evs:
        run = ev.run
        ev.run = lambda params, run=run: (kill(), run(params))[1]
      return evs
    monkeypatch.setattr(evaluators_lib, 'for_project', for_project)
  elif where == 'logging':
    write = writers.JsonlWriter.write_scalars
    monkeypatch.setattr(writers.JsonlWriter, 'write_scalars',
                        lambda self, step, s: (kill(), write(self, step, s))[1])
  else:
    save = checkpoint.Checkpointer.save
    monkeypatch.setattr(checkpoint.Checkpointer, 'save',
                        lambda self, *a, **k: (kill(), save(self, *a, **k))[1])
  workdir = str(tmp_path / 'w')
  out = train.train(helpers.digits_config(**{
      'total_steps': 8, 'checkpoint.every': 2 if where == 'save' else 100,
      'evals.val.every': 1}), workdir)
  assert out['preempted']
  assert out['final_step'] < 8
  assert out['final_step'] in _steps(workdir), (out['final_step'], _steps(workdir))


# --------------------------------------------------- 4. nothing readable / mismatch
def test_all_checkpoints_unreadable_stops_with_an_error(tmp_path):
  workdir = str(tmp_path / 'w')
  train.train(helpers.digits_config(**{'total_steps': 2, 'checkpoint.every': 2}), workdir)
  for root, _, files in os.walk(os.path.join(workdir, 'checkpoints', '2', 'state')):
    for f in files:
      with open(os.path.join(root, f), 'wb') as fh:
        fh.write(b'garbage')
  with pytest.raises(checkpoint.CheckpointError, match=r'none of the 1 checkpoints .* readable'):
    train.train(helpers.digits_config(**{'total_steps': 4, 'checkpoint.every': 2}), workdir)


def test_other_model_width_is_a_config_mismatch_naming_the_parameter(tmp_path):
  workdir = str(tmp_path / 'w')
  train.train(helpers.digits_config(**{'total_steps': 2, 'checkpoint.every': 2}), workdir)
  wider = helpers.digits_config(**{'total_steps': 4, 'checkpoint.every': 2,
                                   'model.width': 48, 'allow_config_change': True})
  with pytest.raises(checkpoint.ConfigMismatchError,
                     match=r"config mismatch.*array 'params/\S+' has shape \(\d+.*\) float32 in "
                     r'the checkpoint but \(.*\) float32 in the config'):
    train.train(wider, workdir)
  assert _steps(workdir) == [2]     # the checkpoint is left as it was


# ------------------------------------------------------------- 6. workdir ownership
def test_a_second_process_on_the_workdir_is_refused_by_pid_and_host(tmp_path):
  workdir = tmp_path / 'w'
  holder = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])
  try:
    workdir.mkdir()
    (workdir / 'LOCK').write_text(
        f'{{"pid": {holder.pid}, "host": "{os.uname().nodename}", "since": 0}}')
    with pytest.raises(workdir_lib.WorkdirError, match=rf'in use by pid {holder.pid} on host '
                       rf'{os.uname().nodename}'):
      train.train(helpers.digits_config(total_steps=2), str(workdir))
    assert not os.path.exists(workdir / 'metrics.jsonl')
  finally:
    holder.kill()
    holder.wait()
  # The holder died without releasing: its lock is stale and taken over.
  out = train.train(helpers.digits_config(total_steps=2), str(workdir))
  assert out['final_step'] == 2
  assert not os.path.exists(workdir / 'LOCK')   # released at the end


def test_another_seed_on_a_workdir_is_refused_unless_allowed(tmp_path, caplog):
  caplog.set_level(logging.INFO)
  workdir = str(tmp_path / 'w')
  train.train(helpers.digits_config(**{'total_steps': 2, 'checkpoint.every': 2}), workdir)
  with pytest.raises(workdir_lib.WorkdirError, match=r'another config: seed was 0, now 1'):
    train.train(helpers.digits_config(**{'total_steps': 4, 'seed': 1}), workdir)
  with open(os.path.join(workdir, 'config.json')) as f:
    assert '"seed": 0' in f.read()                  # not overwritten
  # More steps (and other logging) are not a different run: resumed without a flag.
  out = train.train(helpers.digits_config(**{'total_steps': 3, 'checkpoint.every': 2,
                                             'log_every': 2}), workdir)
  assert sorted(out['train']) == [3]
  out = train.train(helpers.digits_config(**{'total_steps': 4, 'checkpoint.every': 2,
                                             'seed': 1, 'allow_config_change': True}), workdir)
  assert 'seed: 0 -> 1' in caplog.text
  assert sorted(out['train']) == [4]


# ------------------------------------------------------------- 7. metrics.jsonl
def test_metrics_are_on_disk_as_soon_as_written(tmp_path):
  w = writers.JsonlWriter(str(tmp_path))
  w.write_scalars(10, {'loss': 0.5})
  # Another reader (or a run killed now) sees the record without flush/close.
  assert writers.read_metrics(str(tmp_path)) == [{'step': 10, 'loss': 0.5}]
  w.close()


# ------------------------------------------------------- 8. failed asynchronous save
def test_failed_asynchronous_save_stops_the_run_with_one_line(tmp_path, monkeypatch):
  from orbax.checkpoint._src.checkpointers import async_checkpointer

  def disk_full(*args, **kwargs):
    raise OSError(errno.ENOSPC, 'No space left on device')

  monkeypatch.setattr(async_checkpointer, '_on_commit_callback', disk_full)
  workdir = str(tmp_path / 'w')
  with pytest.raises(checkpoint.CheckpointError) as err:
    train.train(helpers.digits_config(**{
        'total_steps': 300, 'checkpoint.every': 150, 'checkpoint.asynchronous': True,
        'evals.val.every': 0}), workdir)
  msg = str(err.value)
  assert '\n' not in msg and 'No space left on device' in msg
  assert os.path.join(workdir, 'checkpoints', '150') in msg
  # Stopped soon after the failed save, not at the next save (step 300).
  last = max(r['step'] for r in writers.read_metrics(workdir))
  assert 150 <= last < 300, last


# ------------------------------------------------------------------- 9. config
@pytest.mark.parametrize('override, message', [
    ({'log_every': 0}, r'config.log_every must be >= 1'),
    ({'checkpoint.every': 0}, r'config.checkpoint.every must be >= 1'),
    ({'checkpoint.every': -5}, r'config.checkpoint.every must be >= 1'),
    ({'mesh': {'data': 0, 'fsdp': 1, 'model': 1}}, r'config.mesh.data must be a positive'),
    ({'mesh': {'data': -2, 'fsdp': 1, 'model': 1}}, r'config.mesh.data must be a positive'),
    ({'mesh': {'data': -1, 'fsdp': -1, 'model': 1}}, r'at most one mesh axis can be -1'),
])
def test_bad_trainer_numbers_are_refused_up_front(tmp_path, override, message):
  with pytest.raises(config_lib.ConfigError, match=message):
    train.train(helpers.digits_config(**override), str(tmp_path / 'w'))
  assert not os.path.exists(tmp_path / 'w' / 'metrics.jsonl')


def test_mistyped_override_is_one_line_with_the_suggestion(tmp_path):
  res = helpers.run_binary('experiments/classification/digits_vit.py:tiny', str(tmp_path),
                           '--config.optimzer.name=sgd')
  assert res.returncode != 0
  assert 'Traceback' not in res.stderr, res.stderr[-3000:]
  assert res.stderr.strip().splitlines()[-1] == (
      "jaxvision.train: error: unknown config key 'optimzer' in --config.optimzer.name; "
      "did you mean 'optimizer'?")


def test_missing_config_file_is_named_in_the_last_line(tmp_path):
  res = helpers.run_binary('experiments/classification/nope.py:tiny', str(tmp_path))
  assert res.returncode != 0
  assert res.stderr.strip().splitlines()[-1] == (
      'jaxvision.train: error: config file not found: experiments/classification/nope.py')
