"""jaxvision.nn.param_tree: unboxing Partitioned params and naming shape mismatches."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxvision.nn import param_tree


class _Net(nn.Module):

  @nn.compact
  def __call__(self, x):
    x = nn.Dense(4, kernel_init=nn.with_logical_partitioning(
        nn.initializers.lecun_normal(), ('embed', 'mlp')))(x)
    return nn.Dense(2)(x)


def _abstract():
  return jax.eval_shape(lambda: _Net().init(jax.random.key(0), jnp.zeros((1, 3))))['params']


def test_unbox_removes_partitioned_boxes():
  boxed = _Net().init(jax.random.key(0), jnp.zeros((1, 3)))['params']
  assert isinstance(boxed['Dense_0']['kernel'], nn.Partitioned)
  plain = param_tree.unbox(boxed)
  assert isinstance(plain['Dense_0']['kernel'], jax.Array)
  np.testing.assert_array_equal(plain['Dense_0']['kernel'], boxed['Dense_0']['kernel'].value)


def test_matching_tree_passes_and_every_problem_is_named():
  good = {'Dense_0': {'kernel': np.zeros((3, 4)), 'bias': np.zeros(4)},
          'Dense_1': {'kernel': np.zeros((4, 2)), 'bias': np.zeros(2)}}
  param_tree.check_shapes(_abstract(), good, 'net')
  bad = {'Dense_0': {'kernel': np.zeros((3, 5)), 'bias': np.zeros(4), 'extra': np.zeros(1)},
         'Dense_1': {'kernel': np.zeros((4, 2))}}
  with pytest.raises(ValueError) as err:
    param_tree.check_shapes(_abstract(), bad, 'net')
  msg = str(err.value)
  assert msg.startswith('net params do not fit the model')
  assert 'missing Dense_1/bias' in msg
  assert 'unexpected Dense_0/extra' in msg
  assert 'Dense_0/kernel: (3, 5) vs model (3, 4)' in msg
