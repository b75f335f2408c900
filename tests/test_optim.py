"""Tests for jaxvision/optim.py against optax's own aliases and closed forms."""
import math

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import pytest

from jaxvision import optim

SHAPES = {
    'img': {'Dense_0': {'kernel': (4, 3), 'bias': (3,)},
            'LayerNorm_0': {'scale': (3,)}},
    'head': {'kernel': (3, 2), 'bias': (2,)},
}
IMG_LEAVES, HEAD_LEAVES = 3, 2
HEAD_SIZE = 3 * 2 + 2
KERNEL_MASK = {'img': {'Dense_0': {'kernel': True, 'bias': False},
                       'LayerNorm_0': {'scale': False}},
               'head': {'kernel': True, 'bias': False}}


def _is_shape(x):
  return isinstance(x, tuple)


def _params(seed=0):
  leaves, treedef = jax.tree.flatten(SHAPES, is_leaf=_is_shape)
  keys = jax.random.split(jax.random.key(seed), len(leaves))
  return jax.tree.unflatten(
      treedef, [jax.random.normal(k, s) for k, s in zip(keys, leaves)])


def _config(schedule=None, **optimizer):
  return ml_collections.ConfigDict(dict(
      optimizer=dict(name='adamw', **optimizer),
      schedule=schedule or dict(type='constant', base_lr=0.1)))


def _run(tx, params, grads_seq, steps=None):
  """Applies tx for each grads tree; returns the list of updates and final state."""
  state = tx.init(params)
  update = jax.jit(tx.update)
  all_updates = []
  for grads in grads_seq:
    updates, state = update(grads, state, params)
    params = optax.apply_updates(params, updates)
    all_updates.append(updates)
  return all_updates, state


def _assert_trees_close(a, b, tol=1e-6):
  jax.tree.map(lambda x, y: np.testing.assert_allclose(x, y, atol=tol, rtol=tol),
               a, b)


# ------------------------------------------------------------ optax equivalence

SCHEDULE = dict(type='cosine', base_lr=0.05, warmup_steps=2, end_lr=0.001)
TOTAL = 6
ADAM_HP = dict(b1=0.8, b2=0.95, eps=1e-7)


def _reference(name, schedule):
  """The plain optax alias the config should reproduce, and the config kwargs."""
  if name == 'adamw':
    return (optax.adamw(schedule, **ADAM_HP, weight_decay=0.03, mask=KERNEL_MASK),
            dict(**ADAM_HP, weight_decay=0.03, wd_mask='.*/kernel'))
  if name == 'adam':
    return optax.adam(schedule, **ADAM_HP), dict(**ADAM_HP)
  if name == 'sgd':
    return (optax.sgd(schedule, momentum=0.7, nesterov=True),
            dict(momentum=0.7, nesterov=True))
  if name == 'sgd_plain':
    return optax.sgd(schedule), dict(momentum=None)
  assert name == 'lamb'
  return (optax.lamb(schedule, **ADAM_HP, weight_decay=0.03, mask=KERNEL_MASK),
          dict(**ADAM_HP, weight_decay=0.03, wd_mask=['.*/kernel']))


@pytest.mark.parametrize('name', ['adamw', 'adam', 'sgd', 'sgd_plain', 'lamb'])
@pytest.mark.parametrize('clip', [None, 0.5])
def test_matches_optax_alias(name, clip):
  params = _params()
  grads_seq = [_params(seed) for seed in range(1, TOTAL + 1)]
  schedule = optim.make_schedule(SCHEDULE, TOTAL)
  ref_tx, kwargs = _reference(name, schedule)
  if clip:
    ref_tx = optax.chain(optax.clip_by_global_norm(clip), ref_tx)
  cfg = _config(SCHEDULE, **kwargs, grad_clip_norm=clip)
  cfg.optimizer.name = name.split('_')[0]
  tx, _ = optim.make_optimizer(cfg, params, TOTAL)
  ours, _ = _run(tx, params, grads_seq)
  ref, _ = _run(ref_tx, params, grads_seq)
  _assert_trees_close(ours, ref)
  # The updates are not trivially zero (the schedule is non-zero after step 0).
  assert float(optax.tree.norm(ours[-1])) > 1e-4


# ------------------------------------------------------------ schedules


def _lr(schedule_cfg, total, step):
  return float(optim.make_schedule(schedule_cfg, total)(step))


@pytest.mark.parametrize('warmup', [10, 0.1])
def test_cosine_schedule(warmup):
  cfg = dict(type='cosine', base_lr=1.0, end_lr=0.1, warmup_steps=warmup)
  np.testing.assert_allclose(_lr(cfg, 100, 0), 0.0)
  np.testing.assert_allclose(_lr(cfg, 100, 4), 0.4, rtol=1e-6)  # warmup ramp
  np.testing.assert_allclose(_lr(cfg, 100, 10), 1.0, rtol=1e-6)
  np.testing.assert_allclose(_lr(cfg, 100, 55), (1.0 + 0.1) / 2, rtol=1e-6)
  want = 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 22 / 90))
  np.testing.assert_allclose(_lr(cfg, 100, 32), want, rtol=1e-6)
  np.testing.assert_allclose(_lr(cfg, 100, 100), 0.1, rtol=1e-6)
  np.testing.assert_allclose(_lr(cfg, 100, 150), 0.1, rtol=1e-6)


def test_constant_and_linear_schedules():
  const = dict(type='constant', base_lr=0.3, warmup_steps=4)
  np.testing.assert_allclose(
      [_lr(const, 50, s) for s in (0, 1, 3, 4, 49)],
      [0.0, 0.075, 0.225, 0.3, 0.3], rtol=1e-6)
  lin = dict(type='linear', base_lr=2.0, end_lr=0.0, warmup_steps=20)
  np.testing.assert_allclose(
      [_lr(lin, 120, s) for s in (10, 20, 70, 95, 120)],
      [1.0, 2.0, 1.0, 0.5, 0.0], rtol=1e-6, atol=1e-7)


def test_step_schedule():
  cfg = dict(type='step', base_lr=1.0, boundaries=[0.5, 75], decay_factor=0.1)
  np.testing.assert_allclose(
      [_lr(cfg, 100, s) for s in (0, 49, 50, 74, 75, 99)],
      [1.0, 1.0, 0.1, 0.1, 0.01, 0.01], rtol=1e-6)


def test_rsqrt_schedule():
  cfg = dict(type='rsqrt', base_lr=0.4, warmup_steps=10, timescale=100)
  np.testing.assert_allclose(
      [_lr(cfg, 1000, s) for s in (5, 10, 110, 310)],
      [0.2, 0.4, 0.4 / math.sqrt(2), 0.2], rtol=1e-6)


def test_schedule_is_jittable():
  fn = optim.make_schedule(dict(type='cosine', base_lr=1.0, warmup_steps=2), 10)
  np.testing.assert_allclose(jax.jit(fn)(jnp.arange(3)), [0.0, 0.5, 1.0])


# ------------------------------------------------------------ param groups


def _masked_nodes(tree):
  leaves = jax.tree.leaves(tree, is_leaf=lambda x: isinstance(x, optax.MaskedNode))
  return [x for x in leaves if isinstance(x, optax.MaskedNode)]


def test_frozen_params_have_zero_updates_and_no_state():
  params = _params()
  cfg = _config(lr_rules=[('img/.*', 0.0), ('head/.*', 10.0)], weight_decay=0.1,
                grad_clip_norm=1.0)
  tx, _ = optim.make_optimizer(cfg, params, 10)
  updates, state = _run(tx, params, [_params(s) for s in (1, 2, 3)])
  for u in updates:
    for leaf in jax.tree.leaves(u['img']):
      assert np.all(np.asarray(leaf) == 0.0)
    assert float(optax.tree.norm(u['head'])) > 0
  # Adam moments (mu, nu) exist only for the head; the backbone holds MaskedNodes.
  arrays = [x for x in jax.tree.leaves(state) if np.ndim(x) > 0]
  assert len(arrays) == 2 * HEAD_LEAVES
  assert sum(x.size for x in arrays) == 2 * HEAD_SIZE
  assert len(_masked_nodes(state)) == 2 * IMG_LEAVES
  # The same holds for abstract init: nothing is allocated for the backbone.
  shapes = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype), params)
  tx, _ = optim.make_optimizer(cfg, shapes, 10)
  abstract = jax.eval_shape(tx.init, shapes)
  assert sum(math.prod(x.shape) for x in jax.tree.leaves(abstract)) == (
      2 * HEAD_SIZE + 2)  # + the adam and schedule step counts


def test_param_labels():
  labels = optim.param_labels(_params(), [('img/Dense_0/.*', 0.0), ('head/.*', 10)])
  assert labels == {'img': {'Dense_0': {'kernel': 'frozen', 'bias': 'frozen'},
                            'LayerNorm_0': {'scale': 'lr*1'}},
                    'head': {'kernel': 'lr*10', 'bias': 'lr*10'}}


def test_lr_multiplier_scales_sgd_update():
  params, grads = _params(), _params(1)
  cfg = _config(lr_rules=[('head/.*', 10.0), ('img/LayerNorm_0/.*', 0.5)],
                momentum=None)
  cfg.optimizer.name = 'sgd'
  tx, _ = optim.make_optimizer(cfg, params, 10)
  (updates,), _ = _run(tx, params, [grads])
  mult = {'img': {'Dense_0': {'kernel': 1.0, 'bias': 1.0},
                  'LayerNorm_0': {'scale': 0.5}},
          'head': {'kernel': 10.0, 'bias': 10.0}}
  want = jax.tree.map(lambda g, m: -0.1 * m * g, grads, mult)
  _assert_trees_close(updates, want)


@pytest.mark.parametrize('name', ['adamw', 'sgd'])
def test_weight_decay_mask(name):
  params = _params()
  zeros = jax.tree.map(jnp.zeros_like, params)
  cfg = _config(weight_decay=0.01, wd_mask=['.*/kernel', 'img/LayerNorm_0/scale'])
  cfg.optimizer.name = name
  tx, _ = optim.make_optimizer(cfg, params, 10)
  (updates,), _ = _run(tx, params, [zeros])
  decays = {'img': {'Dense_0': {'kernel': 1.0, 'bias': 0.0},
                    'LayerNorm_0': {'scale': 1.0}},
            'head': {'kernel': 1.0, 'bias': 0.0}}
  want = jax.tree.map(lambda p, d: -0.1 * 0.01 * d * p, params, decays)
  _assert_trees_close(updates, want, tol=1e-7)


def test_no_weight_decay_when_mask_empty():
  params = _params()
  zeros = jax.tree.map(jnp.zeros_like, params)
  tx, _ = optim.make_optimizer(_config(weight_decay=0.01, wd_mask=''), params, 10)
  (updates,), _ = _run(tx, params, [zeros])
  assert float(optax.tree.norm(updates)) == 0.0


def test_gradient_clipping_ignores_frozen_params():
  params = _params()
  grads = jax.tree.map(jnp.zeros_like, params)
  grads['head']['kernel'] = jnp.full((3, 2), 10.0 / math.sqrt(8))
  grads['head']['bias'] = jnp.full((2,), 10.0 / math.sqrt(8))
  np.testing.assert_allclose(optax.tree.norm(grads), 10.0, rtol=1e-6)
  # Huge gradients on the frozen backbone must not shrink the head's step.
  grads['img'] = jax.tree.map(lambda g: g + 1e3, grads['img'])
  cfg = _config(schedule=dict(type='constant', base_lr=1.0), momentum=None,
                grad_clip_norm=1.0, lr_rules=[('img/.*', 0.0)])
  cfg.optimizer.name = 'sgd'
  tx, _ = optim.make_optimizer(cfg, params, 10)
  (updates,), _ = _run(tx, params, [grads])
  np.testing.assert_allclose(optax.tree.norm(updates), 1.0, rtol=1e-6)
  _assert_trees_close(updates['head'], jax.tree.map(lambda g: -g / 10, grads['head']))


# ------------------------------------------------------------ validation


@pytest.mark.parametrize('optimizer, schedule, needles', [
    (dict(name='adamx'), {}, ['adamx', 'adamw', 'lamb']),
    ({}, dict(type='cosin'), ['cosin', 'cosine', 'rsqrt']),
    (dict(lr_rules=[('imgg/.*', 0.0)]), {}, ['imgg/.*', 'matches no parameter']),
    (dict(lr_rules=[('.*', 1.0), ('head/.*', 0.0)]), {}, ['head/.*', 'earlier']),
    (dict(lr_rules=[('head/.*', -1.0)]), {}, ['head/.*', '-1.0']),
    (dict(weight_decay=0.1, wd_mask='.*/kernal'), {}, ['.*/kernal']),
    (dict(weight_decay=0.1, wd_mask=['.*/kernel', 'bias']), {}, ["'bias'"]),
    (dict(name='adam', weight_decay=0.1), {}, ['adamw']),
    (dict(weight_decay=-0.1), {}, ['weight_decay']),
    (dict(grad_clip_norm=-1.0), {}, ['grad_clip_norm']),
    (dict(wd=0.1), {}, ["'wd'", 'weight_decay']),
    ({}, dict(warmup=10), ["'warmup'", 'warmup_steps']),
    ({}, dict(warmup_steps=20), ['warmup_steps=20', 'total_steps=10']),
])
def test_validation_errors(optimizer, schedule, needles):
  cfg = ml_collections.ConfigDict(dict(optimizer=optimizer, schedule=schedule))
  with pytest.raises(ValueError) as err:
    optim.make_optimizer(cfg, _params(), 10)
  for needle in needles:
    assert needle in str(err.value), (needle, str(err.value))


# ------------------------------------------------------------ sharding helpers


def test_tree_map_params_on_state():
  params = _params()
  cfg = _config(lr_rules=[('img/Dense_0/.*', 0.0)], weight_decay=0.1)
  tx, _ = optim.make_optimizer(cfg, params, 10)
  state = tx.init(params)
  names = jax.tree_util.tree_map_with_path(
      lambda p, _: jax.tree_util.keystr(p, simple=True, separator='/'), params)

  # Plain optax, one tree: f sees each moment array.
  shapes = optax.tree_map_params(tx, lambda x: x.shape, state,
                                 transform_non_params=lambda _: 'count')
  mu = shapes.inner_states['trainable'].inner_state[0].mu
  assert mu['head']['kernel'] == (3, 2)
  assert isinstance(mu['img']['Dense_0']['kernel'], optax.MaskedNode)

  # With a param-shaped tree (shardings, names): frozen entries stay MaskedNode.
  named = optim.tree_map_params(tx, lambda _, n: n, state, names)
  mu = named.inner_states['trainable'].inner_state[0].mu
  assert mu['head']['bias'] == 'head/bias'
  assert mu['img']['LayerNorm_0']['scale'] == 'img/LayerNorm_0/scale'
  assert isinstance(mu['img']['Dense_0']['bias'], optax.MaskedNode)

  # The trainer's use: create the state already sharded like the params.
  mesh = jax.make_mesh((1,), ('data',))
  replicated = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec())
  param_shardings = jax.tree.map(lambda _: replicated, params)
  state_shardings = optim.tree_map_params(
      tx, lambda _, s: s, jax.eval_shape(tx.init, params), param_shardings,
      transform_non_params=lambda _: replicated)
  sharded = jax.jit(tx.init, out_shardings=state_shardings)(params)
  _assert_trees_close(sharded, state)


def test_param_groups_each_get_their_own_optimizer_and_state():
  """SGD+momentum on `backbone/*`, AdamW elsewhere, `frozen` frozen: each equals the
  plain optax alias on its own leaves; clipping uses one norm over all trainable."""
  params = {'backbone': {'kernel': jnp.ones((3, 2)), 'bias': jnp.ones((2,))},
            'head': {'kernel': jnp.full((2, 4), 2.0)}, 'frozen': {'kernel': jnp.ones((5,))}}
  grads = jax.tree.map(lambda x: jnp.arange(x.size, dtype=jnp.float32).reshape(x.shape) - 1.5,
                       params)
  config = ml_collections.ConfigDict({
      'optimizer': {'name': 'adamw', 'weight_decay': 0.1, 'grad_clip_norm': 2.0,
                    'lr_rules': [('frozen/.*', 0.0)],
                    'groups': [('backbone/.*', {'name': 'sgd', 'momentum': 0.9,
                                                'weight_decay': 0.0})]},
      'schedule': {'type': 'constant', 'base_lr': 0.1}})
  tx, _ = optim.make_optimizer(config, params, 10)
  state = tx.init(params)
  # No optimizer state for the frozen param; momentum only for the backbone's two.
  shapes = [np.shape(x) for x in jax.tree.leaves(state)]
  assert (5,) not in shapes
  assert shapes.count((3, 2)) == 1 and shapes.count((2, 4)) == 2   # trace vs adam mu, nu
  trainable = {k: v for k, v in grads.items() if k != 'frozen'}
  norm = float(optax.tree.norm(trainable))
  clipped = jax.tree.map(lambda g: g * min(1.0, 2.0 / norm), trainable)
  for _ in range(2):
    updates, state = tx.update(grads, state, params)
  sgd = optax.sgd(0.1, momentum=0.9)
  s = sgd.init(params['backbone'])
  for _ in range(2):
    want_bb, s = sgd.update(clipped['backbone'], s)
  adamw = optax.adamw(0.1, weight_decay=0.1)
  s = adamw.init(params['head'])
  for _ in range(2):
    want_head, s = adamw.update(clipped['head'], s, params['head'])
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6),
               updates['backbone'], want_bb)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6),
               updates['head'], want_head)
  np.testing.assert_array_equal(updates['frozen']['kernel'], 0)


def test_param_group_errors_are_named():
  params = {'a': {'kernel': jnp.ones((2,))}, 'b': {'kernel': jnp.ones((2,))}}
  base = {'schedule': {'type': 'constant'}}
  with pytest.raises(ValueError, match=r"groups\[0\] \('a/.\*'\) sets \['lr'\]"):
    optim.make_optimizer(ml_collections.ConfigDict(dict(
        base, optimizer={'groups': [('a/.*', {'lr': 1.0})]})), params, 10)
  with pytest.raises(ValueError, match=r"groups\[1\] regex 'a/kernel' takes no trainable"):
    optim.make_optimizer(ml_collections.ConfigDict(dict(
        base, optimizer={'groups': [('a/.*', {'name': 'sgd'}), ('a/kernel', {'name': 'sgd'})]})),
        params, 10)
