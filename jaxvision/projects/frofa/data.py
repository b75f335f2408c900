"""FroFA inputs: a dataset's images -> frozen features (cached once) -> few-shot batches.

`ensure_cache(input_cfg)` extracts the backbone's feature grids for the train / val /
test splits into `jaxvision.data.feature_cache` shards (skipped when the cache already
has them), `fewshot_train` draws the k-shot subset (`jaxvision.data.fewshot`) from the cached
train split, and batches flow through the foundation's grain pipelines.  The backbone
runs only here, never in the head's train step.

Datasets: 'digits' (scikit-learn's real 8x8 digits, splits train / val / test) or any
tfds image dataset prepared under `data_dir`.  For large train splits,
`train_pool_per_class` caches a class-balanced random pool (seed 0) that the k-shot draws
come from (caching, e.g., all of ImageNet's 1.28M 16x16x1024 L/16 grids is neither
needed nor possible); `max_eval_examples` caps the val / test splits.  `classes` (digits
only, e.g. '5-9') keeps some classes of every split, renumbered 0..K-1: the transfer
setting where the backbone was pretrained on the other classes.
"""

from __future__ import annotations

import hashlib
import json
import os

from absl import logging
import numpy as np

from jaxvision.data import digits
from jaxvision.data import feature_cache
from jaxvision.data import fewshot
from jaxvision.data.sources import ArraySource
from jaxvision.data.sources import TfdsSource
from jaxvision.projects.frofa import backbones

_DONE: dict[str, str] = {}   # cache key -> directory, for this process


def cache_root(input_cfg) -> str:
  return (input_cfg.cache_root or os.environ.get('JAXVISION_CACHE')
          or os.path.join(os.path.expanduser('~'), '.cache', 'jaxvision', 'frofa'))


def _key(input_cfg) -> str:
  parts = {k: input_cfg[k] for k in ('dataset', 'data_dir', 'image_key', 'label_key',
                                     'train_split', 'val_split', 'test_split',
                                     'train_pool_per_class', 'max_eval_examples',
                                     'cache_dtype')}
  if input_cfg.classes:   # only when set: caches of all classes keep their names
    parts['classes'] = input_cfg.classes
  parts['backbone'] = input_cfg.backbone.to_dict()
  return hashlib.sha1(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:12]


def cache_dir(input_cfg) -> str:
  if input_cfg.cache_dir:
    return input_cfg.cache_dir
  name = f'{input_cfg.dataset}_{input_cfg.backbone.kind}_{_key(input_cfg)}'.replace('/', '_')
  return os.path.join(cache_root(input_cfg), 'features', name)


def _image_source(input_cfg, split):
  if input_cfg.dataset == 'digits':
    return digits.source(split, input_cfg.classes)
  if input_cfg.classes:
    raise ValueError(f'input.classes={input_cfg.classes!r} is only supported for digits')
  return TfdsSource(input_cfg.dataset, split, input_cfg.data_dir or None,
                    fields={'image': input_cfg.image_key, 'label': input_cfg.label_key})


def _labels(source) -> np.ndarray:
  if isinstance(source, ArraySource):
    return np.asarray(source.fields['label'])
  return np.asarray([source[i]['label'] for i in range(len(source))])


class _Images:
  """Lazy, sliceable view of preprocessed images of `source[indices]`."""

  def __init__(self, source, indices, preprocess):
    self._source, self._indices, self._pre = source, indices, preprocess

  def __len__(self):
    return len(self._indices)

  def __getitem__(self, sl):
    return np.stack([self._pre(self._source[int(i)]['image']) for i in self._indices[sl]])


def _split_indices(input_cfg, role, labels):
  if role == 'train':
    return fewshot.balanced_pool(labels, input_cfg.train_pool_per_class)
  n = len(labels)
  cap = input_cfg.max_eval_examples
  return np.arange(min(n, cap) if cap else n)


def split_name(input_cfg, role: str) -> str:
  return {'train': input_cfg.train_split, 'val': input_cfg.val_split,
          'test': input_cfg.test_split}[role]


def prelogits_dir(input_cfg) -> str:
  """The cache of the backbone's pre-logits (`probe_inputs.py`), inside the grid cache."""
  return os.path.join(cache_dir(input_cfg), 'prelogits')


def ensure_cache(input_cfg, prelogits: bool = False) -> str:
  """Directory of the feature cache of train/val/test, extracting what is missing.

  With `prelogits`, the backbone's pre-logits are cached as well (in `prelogits_dir`).
  The backbone must exist: a missing digits ViT run is an error naming its command.
  """
  directory = cache_dir(input_cfg)
  targets = [(directory, False)] + ([(prelogits_dir(input_cfg), True)] if prelogits else [])
  roles = ('train', 'val', 'test')
  for target, pre in targets:
    if _DONE.get(target) or feature_cache.has_splits(target, roles):
      _DONE[target] = target
      continue
    preprocess, feature_fn, info = backbones.make_backbone(
        input_cfg.backbone, cache_root(input_cfg), prelogits=pre)
    info = dict(info, dataset=input_cfg.dataset, output='prelogits' if pre else 'grid')
    for role in roles:
      if feature_cache.has_splits(target, [role]):
        continue
      source = _image_source(input_cfg, split_name(input_cfg, role))
      labels = _labels(source)
      idx = _split_indices(input_cfg, role, labels)
      logging.info('FroFA cache: extracting %d %s %s (%s) into %s', len(idx), role,
                   info['output'], info['kind'], target)
      feats = feature_cache.extract(feature_fn, _Images(source, idx, preprocess),
                                    batch_size=input_cfg.backbone.batch_size)
      feature_cache.write_split(target, role, feats.astype(input_cfg.cache_dtype),
                                labels[idx].astype(np.int32), info=info)
    _DONE[target] = target
  return directory


def feature_shape(input_cfg) -> tuple[int, ...]:
  return tuple(feature_cache.read_meta(ensure_cache(input_cfg))['feature_shape'])


def load_role(input_cfg, role: str, prelogits: bool = False) -> dict[str, np.ndarray]:
  """The cached features/labels of 'train' (the whole pool), 'val' or 'test' (and the
  backbone's pre-logits, 'prelogits' (N, D), if asked)."""
  src = feature_cache.FeatureCacheSource(ensure_cache(input_cfg, prelogits), role)
  arrays = src.arrays()
  out = {'features': arrays['features'].astype(np.float32), 'label': arrays['label']}
  if prelogits:
    pre = feature_cache.FeatureCacheSource(prelogits_dir(input_cfg), role).arrays()
    if not np.array_equal(pre['label'], out['label']):
      raise ValueError(f'{prelogits_dir(input_cfg)}: {role} labels differ from the grid cache')
    out['prelogits'] = pre['features'].astype(np.float32)
  return out


def fewshot_train(input_cfg) -> dict[str, np.ndarray]:
  """The k-shot subset (`shots`, `fewshot_seed`) of the cached train pool (shots 0: all)."""
  data = load_role(input_cfg, 'train')
  if input_cfg.shots:
    idx = fewshot.fewshot_indices(data['label'], input_cfg.shots, input_cfg.fewshot_seed,
                                  input_cfg.num_classes)
    data = {k: v[idx] for k, v in data.items()}
  return data
