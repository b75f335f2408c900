"""optimizer.updates_per_step=2: upstream's two AdamW steps from one gradient."""

import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import pytest

from jaxvision import optim


def test_two_updates_per_step_equal_two_adamw_steps_on_the_same_gradient():
  params = {'w': jnp.array([1.0, -2.0, 3.0]), 'b': jnp.array([0.5])}
  grads = {'w': jnp.array([0.3, -0.1, 0.2]), 'b': jnp.array([1.0])}
  cfg = ml_collections.ConfigDict({
      'optimizer': {'name': 'adamw', 'weight_decay': 0.01, 'wd_mask': '.*',
                    'updates_per_step': 2},
      'schedule': {'type': 'constant', 'base_lr': 0.1}})
  tx, _ = optim.make_optimizer(cfg, params, 10)
  state = tx.init(params)
  updates, state = tx.update(grads, state, params)
  ours = optax.apply_updates(params, updates)

  ref_tx = optax.adamw(0.1, weight_decay=0.01)
  ref_state = ref_tx.init(params)
  ref = params
  for _ in range(2):                       # opt.step(); opt.step() with the same .grad
    u, ref_state = ref_tx.update(grads, ref_state, ref)
    ref = optax.apply_updates(ref, u)
  for k in params:
    np.testing.assert_allclose(ours[k], ref[k], rtol=1e-6)
  # ... and differs from a single step.
  one_tx, _ = optim.make_optimizer(
      ml_collections.ConfigDict({'optimizer': {'name': 'adamw'},
                                 'schedule': {'type': 'constant', 'base_lr': 0.1}}), params, 10)
  u, _ = one_tx.update(grads, one_tx.init(params), params)
  assert not np.allclose(optax.apply_updates(params, u)['w'], ours['w'])
  with pytest.raises(ValueError, match='updates_per_step'):
    optim.make_optimizer(ml_collections.ConfigDict({
        'optimizer': {'updates_per_step': 0}, 'schedule': {}}), params, 10)
