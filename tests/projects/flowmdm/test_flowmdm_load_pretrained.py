"""FlowMDM's `load_pretrained` places the weights in the run's sharded layout: a
jaxvision run's params (`init.workdir`) are read by orbax shard by shard into the
target NamedShardings (8 simulated CPU devices), equal to what was saved."""

import jax
from jax.sharding import NamedSharding
import numpy as np

from jaxvision import checkpoint
from jaxvision import train
from jaxvision.nn import vit_checkpoint
from tests.projects.flowmdm.test_project import small_config


def test_init_workdir_restores_into_the_sharded_layout(tmp_path, monkeypatch):
  source = str(tmp_path / 'source')
  cfg = small_config(tmp_path, **{'mesh': {'data': 2, 'fsdp': 2, 'model': 2}})
  exp = train.build(cfg)
  saved = exp.setup.init(jax.random.key(5))
  ckpt = checkpoint.Checkpointer(f'{source}/checkpoints', every=1, keep=1, asynchronous=False)
  ckpt.save(3, saved, force=True)
  ckpt.close()

  cfg.init.workdir = source
  fresh = exp.setup.init(jax.random.key(0))['params']
  monkeypatch.setattr(jax, 'device_get', lambda *a, **k: (_ for _ in ()).throw(
      AssertionError('load_pretrained gathered the params on the host')))
  loaded = exp.project.load_pretrained(fresh, cfg)
  monkeypatch.undo()
  flat = vit_checkpoint.flatten(loaded)
  shardings = vit_checkpoint.flatten(exp.setup.param_shardings)
  want = vit_checkpoint.flatten(jax.device_get(saved['params']))
  assert set(flat) == set(shardings) == set(want)
  assert any(any(a is not None for a in s.spec) for s in shardings.values())
  for key, leaf in flat.items():
    assert isinstance(leaf.sharding, NamedSharding) and leaf.sharding == shardings[key], key
    np.testing.assert_array_equal(np.asarray(leaf), want[key], err_msg=key)
  # Without init weights the fresh params come back as they are.
  cfg.init.workdir = ''
  same = exp.project.load_pretrained(fresh, cfg)
  assert all(a is b for a, b in zip(jax.tree.leaves(same), jax.tree.leaves(fresh)))
