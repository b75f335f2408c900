"""Mesh construction and logical-axis rules (8 simulated CPU devices)."""

import flax.linen as nn
import jax
from jax.sharding import PartitionSpec as P
import pytest

from jaxvision import sharding


def test_mesh_infers_the_minus_one_axis():
  mesh = sharding.make_mesh({'data': -1, 'fsdp': 2, 'model': 1})
  assert dict(mesh.shape) == {'data': 4, 'fsdp': 2, 'model': 1}
  assert all(t == jax.sharding.AxisType.Auto for t in mesh.axis_types)


def test_mesh_errors_name_the_problem():
  with pytest.raises(ValueError, match=r"unknown mesh axes \['tensor'\]"):
    sharding.make_mesh({'tensor': 2})
  with pytest.raises(ValueError, match='needs 16 devices, but 8 are available'):
    sharding.make_mesh({'data': 16})
  with pytest.raises(ValueError, match='at most one mesh axis may be -1'):
    sharding.make_mesh({'data': -1, 'model': -1})
  with pytest.raises(ValueError, match='does not divide 8 devices'):
    sharding.make_mesh({'data': -1, 'fsdp': 3})


def test_rules_validate_mesh_axes():
  with pytest.raises(ValueError, match="names mesh axis 'tensor'"):
    sharding.normalize_rules([('mlp', 'tensor')])
  assert sharding.normalize_rules([['batch', ['data', 'fsdp']]]) == (('batch', ('data', 'fsdp')),)


def _boxed(shape, names):
  return nn.LogicallyPartitioned(jax.ShapeDtypeStruct(shape, 'float32'), names)


def test_logical_shardings_apply_rules_and_skip_indivisible_dims():
  mesh = sharding.make_mesh({'data': 2, 'fsdp': 2, 'model': 2})
  rules = sharding.normalize_rules(sharding.DEFAULT_RULES)
  tree = {
      'kernel': _boxed((64, 128), ('embed', 'mlp')),
      'head': _boxed((64, 10), ('embed', 'classes')),      # 10 % 2 == 0: split
      'odd': _boxed((63, 9), ('embed', 'classes')),        # neither divides: replicated
      'plain': jax.ShapeDtypeStruct((3,), 'float32'),
      # The same mesh axis is never used twice within one array.
      'twice': _boxed((8, 8), ('mlp', 'heads')),
  }
  s = sharding.logical_shardings(tree, mesh, rules)
  assert s['kernel'].spec == P('fsdp', 'model')
  assert s['head'].spec == P('fsdp', 'model')
  assert s['odd'].spec == P(None, None)
  assert s['plain'].spec == P()
  assert s['twice'].spec == P('model', None)


def test_batch_sharding_uses_data_axes_of_size_above_one():
  mesh = sharding.make_mesh({'data': 4, 'fsdp': 1, 'model': 2})
  assert sharding.batch_sharding(mesh, 3).spec == P('data', None, None)
  mesh = sharding.make_mesh({'data': 2, 'fsdp': 2, 'model': 2})
  assert sharding.batch_sharding(mesh, 1).spec == P(('data', 'fsdp'))
  assert sharding.data_parallel_size(mesh) == 4
