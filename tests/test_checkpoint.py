"""Checkpointer: keep-N, restore of state + data iterator, params-only loading."""

import jax
import jax.numpy as jnp
import numpy as np

from jaxvision import checkpoint
from jaxvision.data import pipeline
from jaxvision.data import sources


def _state(v):
  return {'step': jnp.asarray(v, jnp.int32), 'params': {'w': jnp.full((3, 2), float(v))},
          'opt_state': (jnp.zeros(()),), 'rng': jax.random.key_data(jax.random.key(v))}


def test_keep_n_and_restore_with_iterator(tmp_path):
  src = sources.ArraySource({'x': np.arange(50)})
  it = iter(pipeline.train_dataset(src, global_batch_size=5, seed=0, process_index=0,
                                   process_count=1))
  ck = checkpoint.Checkpointer(str(tmp_path), every=2, keep=2, asynchronous=False)
  for step in range(1, 7):
    next(it)
    if ck.should_save(step):
      ck.save(step, _state(step), it)
  ck.wait()
  assert ck.all_steps() == [4, 6]
  expected_next = next(it)['x']

  fresh = iter(pipeline.train_dataset(src, global_batch_size=5, seed=0, process_index=0,
                                      process_count=1))
  abstract = jax.eval_shape(lambda: _state(0))
  state, step = ck.restore_latest(abstract, fresh)
  assert step == 6 and int(state['step']) == 6
  np.testing.assert_array_equal(state['params']['w'], np.full((3, 2), 6.0))
  np.testing.assert_array_equal(next(fresh)['x'], expected_next)
  ck.close()
  params = checkpoint.load_params(str(tmp_path))
  np.testing.assert_array_equal(params['w'], np.full((3, 2), 6.0))
  np.testing.assert_array_equal(checkpoint.load_params(str(tmp_path), step=4)['w'],
                                np.full((3, 2), 4.0))


def test_load_params_errors(tmp_path):
  import pytest
  with pytest.raises(FileNotFoundError, match='no checkpoint folder'):
    checkpoint.load_params(str(tmp_path / 'nope'))
