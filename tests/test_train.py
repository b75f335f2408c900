"""The training binary end to end on real data: sharding, resume, guards, evaluation."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time

import jax
import numpy as np
import pytest

from jaxvision import checkpoint
from jaxvision import config as config_lib
from jaxvision import train
from jaxvision import writers
from tests import helpers


def _losses(summaries):
  return [summaries['train'][s]['loss'] for s in sorted(summaries['train'])]


def test_two_by_two_by_two_mesh_matches_one_device(tmp_path):
  one = train.train(helpers.digits_config(**{'mesh': {'data': 1, 'fsdp': 1, 'model': 1}}),
                    str(tmp_path / 'one'))
  eight = train.train(helpers.digits_config(**{'mesh': {'data': 2, 'fsdp': 2, 'model': 2}}),
                      str(tmp_path / 'eight'))
  assert len(_losses(one)) == 5
  np.testing.assert_allclose(_losses(one), _losses(eight), rtol=1e-5, atol=1e-6)
  p1 = checkpoint.load_params(str(tmp_path / 'one'))
  p8 = checkpoint.load_params(str(tmp_path / 'eight'))
  flat1 = {jax.tree_util.keystr(k): v for k, v in jax.tree_util.tree_leaves_with_path(p1)}
  flat8 = {jax.tree_util.keystr(k): v for k, v in jax.tree_util.tree_leaves_with_path(p8)}
  assert flat1.keys() == flat8.keys()
  for name, a in flat1.items():
    if "['key']['bias']" in name:
      # Softmax is invariant to the key bias: its true gradient is 0, so Adam turns
      # float noise into +-lr steps that differ with the reduction order. 5 steps.
      np.testing.assert_allclose(a, flat8[name], atol=5 * 1e-3, err_msg=name)
    else:
      np.testing.assert_allclose(a, flat8[name], rtol=1e-4, atol=1e-6, err_msg=name)
  # The step really changed the parameters (the comparison is not of two inits).
  assert not np.allclose(p1['head']['kernel'], 0)
  assert one['eval'][5]['val/count'] == 180


def test_fsdp_splits_a_large_kernel_across_devices():
  config = helpers.digits_config(**{'mesh': {'data': 1, 'fsdp': 8, 'model': 1}})
  exp = train.build(config)
  state = exp.setup.init(jax.random.key(0))
  kernel = state['params']['Transformer']['encoderblock_0']['MlpBlock_0']['Dense_0']['kernel']
  assert kernel.shape == (32, 64)
  shard_shapes = {s.data.shape for s in kernel.addressable_shards}
  assert shard_shapes == {(4, 64)}           # width 32 split 8 ways over `fsdp`
  assert len(kernel.sharding.device_set) == 8
  # Adam's moments follow their parameter's sharding.
  mu = state['opt_state']
  mu_leaves = [x for x in jax.tree.leaves(mu) if getattr(x, 'shape', None) == (32, 64)]
  assert mu_leaves and all({s.data.shape for s in m.addressable_shards} == {(4, 64)}
                           for m in mu_leaves)


def test_model_axis_splits_mlp_and_heads():
  config = helpers.digits_config(**{'mesh': {'data': 2, 'fsdp': 1, 'model': 4}})
  exp = train.build(config)
  state = exp.setup.init(jax.random.key(0))
  block = state['params']['Transformer']['encoderblock_0']
  assert {s.data.shape for s in block['MlpBlock_0']['Dense_0']['kernel'].addressable_shards} == {
      (32, 16)}
  q = block['MultiHeadDotProductAttention_0']['query']['kernel']   # (embed, heads, kv)
  assert {s.data.shape for s in q.addressable_shards} == {(32, 1, 8)}


def test_exact_resume_after_sigkill(tmp_path):
  """N steps straight == N/2 steps, SIGKILL, the same command again."""
  overrides = ['--config.total_steps=40', '--config.checkpoint.every=10',
               '--config.checkpoint.asynchronous=True', '--config.log_every=1',
               '--config.evals.test.every=0']
  cfg = 'experiments/classification/digits_vit.py:tiny'
  straight = tmp_path / 'straight'
  res = helpers.run_binary(cfg, str(straight), *overrides)
  assert res.returncode == 0, res.stderr[-3000:]

  resumed = tmp_path / 'resumed'
  env = dict(os.environ, PYTHONPATH=helpers.REPO, TF_CPP_MIN_LOG_LEVEL='3')
  proc = subprocess.Popen(helpers.binary_command(cfg, str(resumed), *overrides),
                          cwd=helpers.REPO, env=env, stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL)
  # Kill as soon as step 20 is logged and a checkpoint is complete: past a checkpoint,
  # mid-run, maybe mid-save (metrics.jsonl is flushed per record, so step 20 can be on
  # disk before the asynchronous save of step 10 has finished).
  deadline = time.time() + 240
  while time.time() < deadline and proc.poll() is None:
    if any(r['step'] >= 20 and 'loss' in r for r in writers.read_metrics(str(resumed))) and (
        os.path.isdir(resumed / 'checkpoints' / '10')):
      break
    time.sleep(0.002)
  proc.send_signal(signal.SIGKILL)
  assert proc.wait() == -signal.SIGKILL
  killed_at = max(r['step'] for r in writers.read_metrics(str(resumed)))
  assert 20 <= killed_at < 40, killed_at

  res = helpers.run_binary(cfg, str(resumed), *overrides)
  assert res.returncode == 0, res.stderr[-3000:]
  assert 'resumed from the checkpoint at step' in res.stderr

  def last_loss_per_step(workdir):
    out = {}
    for r in writers.read_metrics(workdir):
      if 'loss' in r:
        out[r['step']] = r['loss']
    return out

  a, b = last_loss_per_step(str(straight)), last_loss_per_step(str(resumed))
  assert sorted(a) == sorted(b) == list(range(1, 41))
  assert a == b   # bit-identical logged losses
  pa, pb = checkpoint.load_params(str(straight)), checkpoint.load_params(str(resumed))
  jax.tree.map(np.testing.assert_array_equal, pa, pb)


def test_sigterm_saves_a_checkpoint_and_exits(tmp_path):
  cfg = 'experiments/classification/digits_vit.py:tiny'
  workdir = tmp_path / 'w'
  env = dict(os.environ, PYTHONPATH=helpers.REPO, TF_CPP_MIN_LOG_LEVEL='3')
  proc = subprocess.Popen(
      helpers.binary_command(cfg, str(workdir), '--config.total_steps=100000',
                             '--config.checkpoint.every=100000', '--config.log_every=1'),
      cwd=helpers.REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
  deadline = time.time() + 240
  while time.time() < deadline and not any(
      r.get('step', 0) >= 3 for r in writers.read_metrics(str(workdir))):
    time.sleep(0.01)
  proc.send_signal(signal.SIGTERM)
  _, err = proc.communicate(timeout=120)
  assert proc.returncode == 128 + signal.SIGTERM, err[-3000:]
  assert 'SIGTERM received' in err
  steps = checkpoint.Checkpointer(str(workdir / 'checkpoints'), every=1, keep=1).all_steps()
  assert len(steps) == 1 and 3 <= steps[0] < 100000


def test_unreadable_latest_checkpoint_falls_back_to_previous(tmp_path, caplog):
  caplog.set_level(logging.INFO)
  workdir = str(tmp_path / 'w')
  train.train(helpers.digits_config(**{'total_steps': 4, 'checkpoint.every': 2}), workdir)
  ckdir = os.path.join(workdir, 'checkpoints')
  assert sorted(int(d) for d in os.listdir(ckdir) if d.isdigit()) == [2, 4]
  # Damage every array file of the newest checkpoint.
  for root, _, files in os.walk(os.path.join(ckdir, '4', 'state')):
    for f in files:
      with open(os.path.join(root, f), 'wb') as fh:
        fh.write(b'garbage')
  out = train.train(helpers.digits_config(**{'total_steps': 6, 'checkpoint.every': 2}), workdir)
  assert 'checkpoint at step 4' in caplog.text and 'unreadable' in caplog.text
  assert 'resumed from the checkpoint at step 2' in caplog.text
  assert sorted(out['train']) == [3, 4, 5, 6]


def test_evaluate_only_restores_and_evaluates(tmp_path):
  workdir = str(tmp_path / 'w')
  trained = train.train(helpers.digits_config(), workdir)
  evals = train.train(helpers.digits_config(total_steps=0), workdir)
  assert evals['train'] == {}
  assert evals['eval'][5]['val/accuracy'] == pytest.approx(trained['eval'][5]['val/accuracy'])


def test_non_finite_loss_stops_and_keeps_last_good_checkpoint(tmp_path):
  workdir = str(tmp_path / 'w')
  config = helpers.digits_config(**{
      'total_steps': 30, 'checkpoint.every': 1,
      'schedule': {'type': 'constant', 'base_lr': 1e30},
      'optimizer': {'name': 'sgd', 'momentum': 0.0, 'grad_clip_norm': None,
                    'weight_decay': 0.0}})
  with pytest.raises(train.NonFiniteLossError, match=r'non-finite loss or gradient at step (\d+)'
                     ) as err:
    train.train(config, workdir)
  bad_step = int(err.value.args[0].split('at step ')[1].split()[0])
  latest = checkpoint.Checkpointer(os.path.join(workdir, 'checkpoints'), every=1, keep=1
                                   ).latest_step()
  assert latest == bad_step - 1
  params = checkpoint.load_params(workdir)
  assert all(np.isfinite(x).all() for x in jax.tree.leaves(params))


def test_unknown_config_key_is_named(tmp_path):
  config = helpers.digits_config()
  config.optimizer.lerning_rate = 0.1
  with pytest.raises(config_lib.ConfigError, match=r"unknown config key 'config\.optimizer\."
                     r"lerning_rate'"):
    train.train(config, str(tmp_path))


def test_missing_config_key_is_named(tmp_path):
  config = helpers.digits_config()
  del config['total_steps']
  with pytest.raises(config_lib.ConfigError,
                     match=r"missing required config key 'config\.total_steps'"):
    train.train(config, str(tmp_path))


def test_unknown_key_on_the_command_line_is_named(tmp_path):
  res = helpers.run_binary('experiments/classification/digits_vit.py:tiny', str(tmp_path),
                           '--config.optimizer.nmae=sgd')
  assert res.returncode != 0
  assert 'nmae' in res.stderr


def test_batch_that_breaks_the_model_contract_is_named(tmp_path):
  config = helpers.digits_config(**{'input.channels': 3})
  with pytest.raises(ValueError, match=r"batch field 'image' has shape \(16, 8, 8, 1\) float32 "
                     r"but the model expects \(16, 8, 8, 3\) float32"):
    train.train(config, str(tmp_path))


def test_batch_not_divisible_by_data_parallel_size(tmp_path):
  config = helpers.digits_config(**{'input.batch_size': 12,
                                    'mesh': {'data': 8, 'fsdp': 1, 'model': 1}})
  with pytest.raises(config_lib.ConfigError, match='batch size 12 is not divisible by the '
                     'data-parallel mesh size 8'):
    train.train(config, str(tmp_path))


def test_unknown_project_is_named(tmp_path):
  config = helpers.digits_config(project='nope')
  with pytest.raises(ValueError, match="config.project='nope'"):
    train.train(config, str(tmp_path))


def test_profile_trace_is_written(tmp_path):
  train.train(helpers.digits_config(**{'total_steps': 4, 'profile.start_step': 1,
                                       'profile.num_steps': 2}), str(tmp_path))
  traces = [f for _, _, fs in os.walk(tmp_path / 'profile') for f in fs if f.endswith('.xplane.pb')]
  assert traces
