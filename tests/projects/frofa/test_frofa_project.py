"""The FroFA project through the one binary: feature cache from a frozen (self-trained)
digits ViT, few-shot sampling, FroFA in the train step, evaluators; the transfer setting
(backbone pretrained on digits 0-4, few-shot on 5-9) and its configuration."""

from __future__ import annotations

import json
import os
import re

import numpy as np
import pytest

from jaxvision import train
from jaxvision.data import digits
from jaxvision.data import feature_cache
from jaxvision.projects.frofa import backbones
from jaxvision.projects.frofa import data


def test_tiny_transfer_config_trains_on_cached_features(fewshot_config, frofa_cache_root,
                                                        tiny_transfer_cache, tmp_path):
  config = fewshot_config('tiny,backbone=vit_transfer,shots=1,frofa=bc2_pc')
  config.input.cache_root = frofa_cache_root
  config.total_steps = 3
  out = train.train(config, str(tmp_path / 'run'))
  assert sorted(out['train']) == [1, 2, 3]
  # Only digits 5-9 are seen by the head and its evaluators, as labels 0-4.
  labels = {s: digits.load(s)['label'] for s in ('train', 'val', 'test')}
  counts = {s: int(np.sum(y >= 5)) for s, y in labels.items()}
  final = out['eval'][3]
  assert 0.0 <= final['test/accuracy'] <= 1.0 and 0.2 < final['linear_probe/accuracy']
  assert final['test/count'] == counts['test'] and final['val/count'] == counts['val']
  directory = data.cache_dir(config.input)
  assert directory == tiny_transfer_cache
  meta = feature_cache.read_meta(directory)
  assert meta['feature_shape'] == [4, 4, 16]
  assert {k: v['num_examples'] for k, v in meta['splits'].items()} == counts
  cached = feature_cache.FeatureCacheSource(directory, 'test').arrays()['label']
  np.testing.assert_array_equal(cached, labels['test'][labels['test'] >= 5] - 5)
  # The 1-shot training set: one example of each of the 5 classes.
  train_set = data.fewshot_train(config.input)
  np.testing.assert_array_equal(np.sort(train_set['label']), np.arange(5))
  # The backbone is the tiny digits ViT trained on classes 0-4 only (5-way head).
  vit_dir = os.path.join(frofa_cache_root, 'digits_vit_tiny_classes_0-4')
  assert meta['info']['workdir'] == vit_dir
  with open(os.path.join(vit_dir, 'config.json')) as f:
    vit_config = json.load(f)
  assert vit_config['input']['classes'] == '0-4' and vit_config['model']['num_classes'] == 5


def test_transfer_configs(fewshot_config):
  transfer = fewshot_config('backbone=vit_transfer')
  by_hand = fewshot_config('backbone=vit,pretrain_classes=0-4,classes=5-9')
  assert transfer.input.to_dict() == by_hand.input.to_dict()
  assert transfer.input.num_classes == transfer.model.num_classes == 5
  assert transfer.input.classes == '5-9'
  assert transfer.input.backbone.train_arg == 'classes=0-4'
  full = fewshot_config('backbone=vit')
  assert full.input.classes == '' and full.model.num_classes == 10
  assert data.cache_dir(full.input) != data.cache_dir(transfer.input)
  assert backbones.digits_vit_dirname('') == 'digits_vit'
  assert backbones.digits_vit_dirname('classes=0-4') == 'digits_vit_classes_0-4'
  assert backbones.digits_vit_dirname('tiny,classes=0-4') == 'digits_vit_tiny_classes_0-4'
  with pytest.raises(ValueError, match='pretrain_classes needs a digits ViT'):
    fewshot_config('backbone=vgg,pretrain_classes=0-4')
  with pytest.raises(ValueError, match='backbone='):
    fewshot_config('backbone=resnet')
  with pytest.raises(ValueError, match='digits classes'):
    fewshot_config('classes=3-12')
  bad = fewshot_config('classes=5-9')
  bad.input.dataset = 'imagenet2012'
  with pytest.raises(ValueError, match='only supported for digits'):
    data._image_source(bad.input, 'test')  # pylint: disable=protected-access


def test_big_vision_npz_backbone_gives_the_vits_token_grid(tmp_path):
  """A big_vision-layout .npz (written here from a random ViT) -> (B, h, w, C) tokens."""
  import flax.linen as nn  # pylint: disable=g-import-not-at-top
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  import ml_collections  # pylint: disable=g-import-not-at-top
  from jaxvision.nn import vit  # pylint: disable=g-import-not-at-top
  from jaxvision.nn import vit_checkpoint  # pylint: disable=g-import-not-at-top
  from jaxvision.projects.frofa import backbones  # pylint: disable=g-import-not-at-top
  model = vit.make_vit('Ti/16', num_classes=None, pool_type='none')
  shapes = jax.eval_shape(lambda x: model.init(jax.random.key(0), x, train=False),
                          jnp.zeros((1, 32, 32, 3)))['params']
  rng = np.random.default_rng(0)   # random parameters without compiling an initialiser
  params = jax.tree_util.tree_map_with_path(
      lambda p, s: (float(p[-1].key == 'scale') + rng.normal(0, 0.05, s.shape)).astype(s.dtype),
      nn.meta.unbox(shapes))
  path = str(tmp_path / 'ti16.npz')
  vit_checkpoint.save_big_vision_npz(path, params)
  cfg = ml_collections.ConfigDict(dict(backbones.BACKBONE_DEFAULTS))
  cfg.update(kind='vit_npz', npz=path, variant='Ti/16', image_size=(32, 32))
  preprocess, feature_fn, info = backbones.make_backbone(cfg, str(tmp_path))
  rng = np.random.default_rng(0)
  images = np.stack([preprocess(rng.integers(0, 256, (20, 24, 3), np.uint8)) for _ in range(2)])
  assert images.shape == (2, 32, 32, 3) and images.min() >= -1 and images.max() <= 1
  feats = np.asarray(feature_fn(images))
  _, out = model.apply({'params': params}, images, train=False)
  np.testing.assert_allclose(feats, np.asarray(out['encoded']).reshape(2, 2, 2, 192), atol=1e-5)
  assert info['kind'] == 'vit_npz'


def test_a_missing_backbone_is_an_error_naming_its_command(fewshot_config, tmp_path):
  config = fewshot_config('backbone=vit_transfer')
  config.input.cache_root = str(tmp_path)
  expected = ('python -m jaxvision.train --config=experiments/classification/digits_vit.py:'
              f'classes=0-4 --workdir={tmp_path}/digits_vit_classes_0-4')
  with pytest.raises(FileNotFoundError, match=re.escape(expected)):
    data.ensure_cache(config.input)
  assert not os.path.exists(tmp_path / 'digits_vit_classes_0-4')   # nothing was trained


def test_seeds_as_one_replicated_run(fewshot_config, frofa_cache_root, tiny_transfer_cache,
                                     tmp_path):
  """seeds=3: each replica's evaluations equal a single head with that replica's params on
  the cache (accuracy), and a probe fitted on that seed's own k-shot set (linear probe);
  replica r trained on exactly seed r's k-shot set."""
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  from jaxvision import runs  # pylint: disable=g-import-not-at-top
  from jaxvision.data import fewshot  # pylint: disable=g-import-not-at-top
  from jaxvision.metrics import linear_probe  # pylint: disable=g-import-not-at-top
  from jaxvision.projects.frofa import model as model_lib  # pylint: disable=g-import-not-at-top
  from jaxvision.projects.frofa import replicas  # pylint: disable=g-import-not-at-top
  config = fewshot_config('tiny,backbone=vit_transfer,shots=2,seeds=3,seed=4')
  config.input.cache_root = frofa_cache_root
  config.total_steps = 3
  out = train.train(config, str(tmp_path / 'run'))
  final = out['eval'][3]
  run = runs.load_run(str(tmp_path / 'run'))
  assert run.params['replicas']['head']['kernel'].shape[0] == 3
  test = data.load_role(config.input, 'test')
  pool = data.load_role(config.input, 'train')
  head = model_lib.MAPClassifier(num_classes=5, num_heads=2)
  accs = []
  for r, seed in enumerate((4, 5, 6)):
    params = _slice(run.params['replicas'], r)
    logits = head.apply({'params': params}, jnp.asarray(test['features']))
    acc = float(np.mean(np.argmax(np.asarray(logits), -1) == test['label']))
    assert final[f'test/accuracy/seed_{seed}'] == pytest.approx(acc, abs=1e-6)
    accs.append(acc)
    idx = fewshot.fewshot_indices(pool['label'], 2, seed, 5)
    mean_tok = lambda f: f.reshape(len(f), -1, f.shape[-1]).mean(1)
    cache = linear_probe.fit(mean_tok(pool['features'][idx]), pool['label'][idx], 5)
    assert final[f'linear_probe/accuracy/seed_{seed}'] == pytest.approx(linear_probe.accuracy(
        cache, mean_tok(test['features']), test['label'], final['linear_probe/l2']), abs=1e-6)
  assert final['test/accuracy'] == pytest.approx(np.mean(accs), abs=1e-6)
  # Replica r's training examples are exactly seed r's k-shot set.
  src = replicas.train_source(config.input, [4, 5, 6])
  arrays = src.fields
  for r, seed in enumerate((4, 5, 6)):
    idx = fewshot.fewshot_indices(pool['label'], 2, seed, 5)
    np.testing.assert_array_equal(np.sort(arrays['label'][:, r]), np.sort(pool['label'][idx]))
    np.testing.assert_allclose(np.sort(arrays['features'][:, r].ravel()),
                               np.sort(pool['features'][idx].ravel()))
  bad = fewshot_config('tiny,backbone=vit_transfer,seeds=2')
  bad.optimizer.grad_clip_norm = 1.0
  with pytest.raises(ValueError, match='coupling'):
    train.build(bad)


def _slice(tree, r):
  return {k: _slice(v, r) if isinstance(v, dict) else np.asarray(v)[r] for k, v in tree.items()}


def test_per_replica_clipping_equals_optax_per_replica():
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  import optax  # pylint: disable=g-import-not-at-top
  from jaxvision.projects.frofa import replicas  # pylint: disable=g-import-not-at-top
  rng = np.random.default_rng(0)
  params = {'a': jnp.asarray(rng.normal(size=(3, 4))),
            'b': {'c': jnp.asarray(rng.normal(size=(3, 2, 2)))}}
  scales = jnp.asarray([0.1, 5.0, 30.0])   # replica 0 below the norm, 1 and 2 above

  def loss(p):
    return sum(jnp.sum(jnp.reshape(scales, (-1,) + (1,) * (x.ndim - 1)) * x ** 2)
               for x in jax.tree.leaves(p))

  got = jax.grad(lambda p: loss(replicas.clip_per_replica(p, 1.0)))(params)
  full = jax.grad(loss)(params)
  clip = optax.clip_by_global_norm(1.0)
  for r in range(3):
    ref, _ = clip.update(_slice(full, r), clip.init(None))
    for g, e in zip(jax.tree.leaves(_slice(got, r)), jax.tree.leaves(ref)):
      np.testing.assert_allclose(g, e, rtol=1e-6)
  assert float(optax.tree.norm(_slice(got, 0))) < 1.0 - 1e-3
  assert float(optax.tree.norm(_slice(got, 2))) == pytest.approx(1.0, rel=1e-5)
