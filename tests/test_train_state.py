"""The growing train state: named sub-trees, EMA, frozen params, batch_stats, exact resume."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import pytest

from jaxvision import checkpoint
from jaxvision import optim
from jaxvision import sharding as sharding_lib
from jaxvision import train
from jaxvision import train_state
from tests import toy_project


def test_select_and_merge_round_trip():
  tree = {'a': {'x': 1, 'y': 2}, 'b': {'x': 3}}
  sub = train_state.select(tree, ['a/.*', 'b/x'])
  assert sub == {'a': {'x': 1, 'y': 2}, 'b': {'x': 3}}
  assert train_state.select(tree, 'a/y') == {'a': {'y': 2}}
  assert train_state.merge(tree, {'a': {'y': 20}}) == {'a': {'x': 1, 'y': 20}, 'b': {'x': 3}}
  with pytest.raises(ValueError, match="'c/.*' matches no leaf"):
    train_state.select(tree, ['a/x', 'c/.*'])


def _quadratic_setup(ema_cfg, lr_rules=()):
  """SGD on 0.5 |p - t|^2 for p = {'w': (4,), 'frozen': (3,)}: closed-form trajectory."""
  target = jnp.arange(4.0)

  def init_params(model, rng, batch):
    del model, rng, batch
    return {'w': jnp.full((4,), 10.0), 'frozen': jnp.ones((3,))}

  def loss_fn(params, batch, rng, *, model, config):
    del batch, rng, model, config
    loss = 0.5 * jnp.sum((params['w'] - target) ** 2) + jnp.sum(params['frozen'] ** 2)
    return loss, {}

  config = ml_collections.ConfigDict({
      'optimizer': {'name': 'sgd', 'momentum': 0.0, 'lr_rules': list(lr_rules)},
      'schedule': {'type': 'constant', 'base_lr': 0.25}})
  abstract = {'w': jax.ShapeDtypeStruct((4,), jnp.float32),
              'frozen': jax.ShapeDtypeStruct((3,), jnp.float32)}
  tx, schedule = optim.make_optimizer(config, abstract, 100)
  mesh = sharding_lib.make_mesh({'data': 1, 'fsdp': 1, 'model': 1})
  rules = sharding_lib.DEFAULT_RULES
  setup = train_state.make_state_setup(model=None, tx=tx, init_params=init_params,
                                       dummy_batch={}, mesh=mesh, rules=rules, ema=ema_cfg)
  step = jax.jit(train_state.make_train_step(loss_fn=loss_fn, model=None, config=config,
                                             tx=tx, schedule=schedule, ema=ema_cfg))
  return setup, step, np.arange(4.0)


def test_ema_every_n_steps_matches_closed_form_and_frozen_holds_no_state():
  ema_cfg = train_state.EmaConfig(decay=0.5, every=2, params='w')
  setup, step, target = _quadratic_setup(ema_cfg, lr_rules=[('frozen', 0.0)])
  state = setup.init(jax.random.key(0))
  assert set(state) == {'step', 'params', 'opt_state', 'rng', 'ema'}
  assert set(state['ema']) == {'w'}          # only the chosen sub-tree is averaged
  # A frozen param holds no optimizer state: no leaf of opt_state has its shape.
  assert not [x for x in jax.tree.leaves(state['opt_state']) if np.shape(x) == (3,)]
  p, ema = np.full(4, 10.0), np.full(4, 10.0)
  for k in range(1, 8):
    state, _ = step(state, {})
    p = target + (1 - 0.25) * (p - target)   # SGD on the quadratic, lr 0.25
    if k % 2 == 0:
      ema = 0.5 * ema + 0.5 * p
    np.testing.assert_allclose(state['params']['w'], p, rtol=1e-6)
    np.testing.assert_allclose(state['ema']['w'], ema, rtol=1e-6)
  np.testing.assert_array_equal(state['params']['frozen'], np.ones(3))


def test_ema_config_errors():
  assert train_state.EmaConfig.from_config(ml_collections.ConfigDict(
      {'decay': 0.0, 'every': 1, 'params': '.*'})) is None
  with pytest.raises(ValueError, match=r'config\.ema\.decay=1\.5'):
    train_state.EmaConfig.from_config(ml_collections.ConfigDict(
        {'decay': 1.5, 'every': 1, 'params': '.*'}))


def toy_config(**overrides):
  c = ml_collections.ConfigDict({
      'project': 'toy', 'seed': 0, 'total_steps': 8, 'log_every': 1,
      'mesh': {'data': 1, 'fsdp': 1, 'model': 1},
      'optimizer': {'name': 'adamw', 'weight_decay': 1e-3},
      # Constant after warm-up: a shorter first run must not change the schedule.
      'schedule': {'type': 'constant', 'base_lr': 1e-2, 'warmup_steps': 2},
      'ema': {'decay': 0.9, 'every': 2, 'params': 'backbone/.*'},
      'checkpoint': {'every': 4, 'keep': 3, 'asynchronous': False},
      'evals': {'val': {'type': 'mse'}},
  })
  for k, v in overrides.items():
    c[k] = v
  return c


def _full_state(config, workdir, step):
  exp = train.build(config)
  return checkpoint.Checkpointer(f'{workdir}/checkpoints', every=1, keep=3).restore(
      step, exp.setup.abstract_state)


@pytest.mark.parametrize('mesh', [{'data': 1, 'fsdp': 1, 'model': 1},
                                  {'data': 2, 'fsdp': 2, 'model': 2}])
def test_resume_with_batch_stats_and_ema_is_bit_identical(tmp_path, monkeypatch, mesh):
  toy_project.register(monkeypatch)
  straight, resumed = str(tmp_path / 'straight'), str(tmp_path / 'resumed')
  out = train.train(toy_config(mesh=mesh), straight)
  assert out['train'][8]['loss'] < out['train'][1]['loss']
  train.train(toy_config(mesh=mesh, total_steps=4), resumed)
  again = train.train(toy_config(mesh=mesh), resumed)
  assert sorted(again['train']) == [5, 6, 7, 8]
  for s in (5, 6, 7, 8):
    assert again['train'][s]['loss'] == out['train'][s]['loss']
  a = _full_state(toy_config(mesh=mesh), straight, 8)
  b = _full_state(toy_config(mesh=mesh), resumed, 8)
  assert set(a) == {'step', 'params', 'opt_state', 'rng', 'batch_stats', 'ema'}
  jax.tree.map(np.testing.assert_array_equal, a, b)
  # The running statistics moved away from their init (0 mean, 1 var) ...
  assert not np.allclose(a['batch_stats']['backbone']['BatchNorm_0']['mean'], 0)
  # ... and the EMA holds the backbone only, lagging behind the params.
  assert set(a['ema']) == {'backbone'}
  assert not np.allclose(a['ema']['backbone']['Dense_0']['kernel'],
                         a['params']['backbone']['Dense_0']['kernel'])
  # Evaluators get the variables dict (params + batch_stats).
  assert np.isfinite(out['eval'][8]['val/mse'])
