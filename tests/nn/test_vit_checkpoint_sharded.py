"""Pretrained weights restore straight into the sharded layout (8 simulated CPU devices).

`nn.param_tree.place` / `vit_checkpoint.merge_params` with sharded targets, and the
classification project's `load_pretrained` as the binary calls it: on the run's fresh
sharded params, never gathering them on the host (`jax.device_get` is forbidden).
"""

import jax
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P
import numpy as np
import pytest

from jaxvision import train
from jaxvision.nn import param_tree
from jaxvision.nn import vit_checkpoint
from tests import helpers


def test_place_slices_each_shard_from_the_host_array():
  mesh = jax.make_mesh((4, 2), ('a', 'b'), axis_types=(jax.sharding.AxisType.Auto,) * 2)
  host = np.arange(8 * 6, dtype=np.float64).reshape(8, 6)
  target = jax.ShapeDtypeStruct((8, 6), np.float32, sharding=NamedSharding(mesh, P('a', 'b')))
  placed = param_tree.place(host, target)
  assert placed.sharding == target.sharding and placed.dtype == np.float32
  for shard in placed.addressable_shards:
    assert shard.data.shape == (2, 3)
    np.testing.assert_array_equal(np.asarray(shard.data), host[shard.index])
  # An already placed array is resharded (on device); a plain target leaves it alone.
  again = param_tree.place(placed, jax.ShapeDtypeStruct(
      (8, 6), np.float32, sharding=NamedSharding(mesh, P(None, 'b'))))
  assert again.sharding.spec == P(None, 'b')
  np.testing.assert_array_equal(np.asarray(again), host)
  assert param_tree.place(host, np.zeros((8, 6))) is host
  with pytest.raises(ValueError, match=r'shape \(8, 6\) on a target of shape \(6, 8\)'):
    param_tree.place(host, jax.ShapeDtypeStruct((6, 8), np.float32,
                                                sharding=target.sharding))


def _build(tmp_path, **overrides):
  config = helpers.digits_config(**{'mesh': {'data': 2, 'fsdp': 2, 'model': 2},
                                    **overrides})
  exp = train.build(config)
  return exp.config.copy_and_resolve_references(), exp


def test_classification_npz_loads_into_the_sharded_layout(tmp_path, monkeypatch):
  config, exp = _build(tmp_path)
  # Weights to load: a differently seeded init of the same model, as a big_vision npz.
  source = jax.device_get(exp.setup.init(jax.random.key(7))['params'])
  npz = str(tmp_path / 'vit.npz')
  vit_checkpoint.save_big_vision_npz(npz, source)
  fresh = exp.setup.init(jax.random.key(0))['params']

  config.init.npz = npz
  def no_gather(*args, **kwargs):
    raise AssertionError('load_pretrained gathered arrays on the host (jax.device_get)')
  monkeypatch.setattr(jax, 'device_get', no_gather)
  loaded = exp.project.load_pretrained(fresh, config)
  monkeypatch.undo()

  flat_loaded = vit_checkpoint.flatten(loaded)
  flat_shardings = vit_checkpoint.flatten(exp.setup.param_shardings)
  assert set(flat_loaded) == set(flat_shardings)
  split = 0
  for key, leaf in flat_loaded.items():
    assert isinstance(leaf, jax.Array), key
    assert leaf.sharding == flat_shardings[key], key
    assert isinstance(leaf.sharding, NamedSharding)
    split += any(a is not None for a in leaf.sharding.spec)
  assert split >= 4   # the rules really shard the kernels over fsdp/model

  # The same values as the single-device (host) load and as the file itself.
  single = vit_checkpoint.load_big_vision_npz(
      npz, jax.eval_shape(lambda: jax.device_get(source)))
  flat_single, flat_source = vit_checkpoint.flatten(single), vit_checkpoint.flatten(source)
  for key, leaf in flat_loaded.items():
    assert isinstance(flat_single[key], np.ndarray)
    np.testing.assert_array_equal(np.asarray(leaf), flat_single[key], err_msg=key)
    np.testing.assert_array_equal(np.asarray(leaf), flat_source[key], err_msg=key)


def test_dont_load_keeps_the_sharded_init_and_abstract_targets_get_placed(tmp_path):
  config, exp = _build(tmp_path)
  source = jax.device_get(exp.setup.init(jax.random.key(7))['params'])
  npz = str(tmp_path / 'vit.npz')
  vit_checkpoint.save_big_vision_npz(npz, source)
  fresh = exp.setup.init(jax.random.key(0))['params']
  config.init.npz, config.init.dont_load = npz, ('head/.*',)
  loaded = exp.project.load_pretrained(fresh, config)
  assert loaded['head']['kernel'] is fresh['head']['kernel']   # kept, still sharded
  np.testing.assert_array_equal(np.asarray(loaded['embedding']['kernel']),
                                source['embedding']['kernel'])
  # Abstract targets (the binary's `abstract_state`) are placed too: nothing is built
  # on the devices before the file is read.
  abstract = exp.setup.abstract_state['params']
  placed = vit_checkpoint.load_big_vision_npz(npz, abstract)
  for (key, leaf), (_, target) in zip(sorted(vit_checkpoint.flatten(placed).items()),
                                      sorted(vit_checkpoint.flatten(abstract).items())):
    assert leaf.sharding == target.sharding, key
    np.testing.assert_array_equal(np.asarray(leaf), vit_checkpoint.flatten(source)[key])


def test_sharded_load_through_the_binary_evaluates_like_the_source(tmp_path):
  """`train.train` with `init.npz` on a 2x2x2 mesh: the loaded run evaluates as a
  1-device run loaded from the same file (total_steps=0: evaluate only)."""
  _, exp = _build(tmp_path)
  npz = str(tmp_path / 'vit.npz')
  vit_checkpoint.save_big_vision_npz(
      npz, jax.device_get(exp.setup.init(jax.random.key(3))['params']))
  sharded = train.train(helpers.digits_config(**{
      'total_steps': 0, 'init.npz': npz, 'mesh': {'data': 2, 'fsdp': 2, 'model': 2}}),
      str(tmp_path / 'sharded'))
  single = train.train(helpers.digits_config(**{
      'total_steps': 0, 'init.npz': npz, 'mesh': {'data': 1, 'fsdp': 1, 'model': 1}}),
      str(tmp_path / 'single'))
  assert sharded['eval'][0]['val/accuracy'] == pytest.approx(single['eval'][0]['val/accuracy'])
  assert sharded['eval'][0]['val/loss'] == pytest.approx(single['eval'][0]['val/loss'],
                                                         rel=1e-5)
