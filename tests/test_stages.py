"""Multi-stage pipelines: stage two starts from sub-trees of stage one, read sharded."""

from __future__ import annotations

import jax
from jax.sharding import NamedSharding
import numpy as np
import pytest

from jaxvision import checkpoint
from jaxvision import stages
from jaxvision import train
from tests import toy_project
from tests.test_train_state import toy_config

MESH8 = {'data': 2, 'fsdp': 2, 'model': 2}


def test_two_stage_pretrain_then_finetune(tmp_path, monkeypatch):
  toy_project.register(monkeypatch)
  stage1, stage2 = str(tmp_path / 'pretrain'), str(tmp_path / 'finetune')
  train.train(toy_config(mesh={'data': 1, 'fsdp': 1, 'model': 1}, total_steps=4), stage1)
  # Stage two: a new head (3 outputs), the backbone and its BatchNorm statistics
  # from stage one, on another mesh (the checkpoint is resharded on read).
  cfg2 = toy_config(mesh=MESH8, total_steps=0)
  cfg2.model = {'hidden': 16, 'out': 3}
  cfg2.init = {'from_workdir': stage1, 'restore': ['params/backbone/.*', 'batch_stats/.*']}
  exp = train.build(cfg2)
  fresh = exp.setup.init(jax.random.key(cfg2.seed))
  state, step, names = stages.restore_subtrees(fresh, stage1, list(cfg2.init.restore))
  assert step == 4
  assert sorted(names) == sorted([
      'params/backbone/Dense_0/kernel', 'params/backbone/Dense_0/bias',
      'params/backbone/BatchNorm_0/scale', 'params/backbone/BatchNorm_0/bias',
      'batch_stats/backbone/BatchNorm_0/mean', 'batch_stats/backbone/BatchNorm_0/var'])
  one = checkpoint.Checkpointer(f'{stage1}/checkpoints', every=1, keep=3).restore(
      4, train.build(toy_config(mesh={'data': 1, 'fsdp': 1, 'model': 1})).setup.abstract_state)
  np.testing.assert_array_equal(state['params']['backbone']['Dense_0']['kernel'],
                                one['params']['backbone']['Dense_0']['kernel'])
  np.testing.assert_array_equal(state['batch_stats']['backbone']['BatchNorm_0']['var'],
                                one['batch_stats']['backbone']['BatchNorm_0']['var'])
  # Restored leaves carry this run's NamedSharding (kernel: embed->fsdp, mlp->model).
  kernel = state['params']['backbone']['Dense_0']['kernel']
  target = exp.setup.shardings['params']['backbone']['Dense_0']['kernel']
  assert isinstance(kernel.sharding, NamedSharding) and kernel.sharding == target
  assert {s.data.shape for s in kernel.addressable_shards} == {(4, 8)}
  # The new head keeps its fresh initialisation, and the optimizer starts fresh.
  np.testing.assert_array_equal(state['params']['head']['kernel'], fresh['params']['head']['kernel'])
  assert int(state['step']) == 0

  # The binary does the same from the config alone, and fine-tunes.
  cfg2.total_steps = 3
  out = train.train(cfg2, stage2)
  assert sorted(out['train']) == [1, 2, 3]
  assert np.isfinite(out['train'][3]['loss'])


def test_restore_errors_name_the_problem(tmp_path, monkeypatch):
  toy_project.register(monkeypatch)
  stage1 = str(tmp_path / 'pretrain')
  train.train(toy_config(total_steps=2, checkpoint={'every': 2, 'keep': 1,
                                                    'asynchronous': False}), stage1)
  cfg = toy_config(total_steps=0)
  cfg.model = {'hidden': 32, 'out': 1}
  fresh = train.build(cfg).setup.init(jax.random.key(0))
  with pytest.raises(ValueError, match=r"'params/backbone/Dense_0/kernel' has shape \(8, 16\)"):
    stages.restore_subtrees(fresh, stage1, ['params/backbone/Dense_0/kernel'])
  with pytest.raises(ValueError, match="'params/neck/.*' matches no leaf"):
    stages.restore_subtrees(fresh, stage1, ['params/neck/.*'])
  with pytest.raises(FileNotFoundError, match='no checkpoints folder'):
    stages.restore_subtrees(fresh, str(tmp_path / 'nothing'), ['params/.*'])
  with pytest.raises(FileNotFoundError, match=r'from_step=7'):
    stages.restore_subtrees(fresh, stage1, ['params/.*'], step=7)
