"""Frozen-feature caches: extract a backbone's features once, store them as npz shards.

Methods that train a light model on frozen features (FroFA, linear probes) run the
backbone once per dataset split and never again: `extract` runs a jitted feature
function over a source in fixed-size batches (the last one padded, so it compiles
once), `write_split` stores the result as shards

    <dir>/<split>-00000-of-00004.npz     arrays 'features' (n, ...) and 'label' (n,)
    <dir>/meta.json                      {'splits': {split: {'num_examples', 'shards'}},
                                          'feature_shape', 'dtype', 'info': {...}}

and `FeatureCacheSource` reads them back with random access for grain
(`grain.MapDataset.source`), loading each shard on first use.  Every file is written
to a temporary name and renamed, and meta.json is updated last, so a split listed
there is complete.
"""

from __future__ import annotations

import json
import math
import os
from typing import Any, Callable, Iterable, Mapping

import numpy as np

from jaxvision.data.errors import DataFileError
from jaxvision.data.errors import read_npz

META = 'meta.json'


def extract(feature_fn: Callable[[np.ndarray], Any], images: np.ndarray, *,
            batch_size: int = 256) -> np.ndarray:
  """feature_fn over `images` (n, ...) in batches of `batch_size`; returns (n, ...) numpy."""
  n = len(images)
  if n == 0:
    raise ValueError('no images to extract features from')
  out = []
  for start in range(0, n, batch_size):
    batch = np.asarray(images[start:start + batch_size])
    valid = len(batch)
    if valid < batch_size:  # pad to the fixed batch shape (one compilation)
      pad = np.repeat(batch[-1:], batch_size - valid, axis=0)
      batch = np.concatenate([batch, pad], axis=0)
    feats = np.asarray(feature_fn(batch))[:valid]
    if not np.all(np.isfinite(feats)):
      raise ValueError(f'the backbone produced non-finite features for examples '
                       f'{start}..{start + valid - 1}')
    out.append(feats)
  return np.concatenate(out, axis=0)


def read_meta(directory: str) -> dict[str, Any]:
  path = os.path.join(directory, META)
  if not os.path.exists(path):
    return {'splits': {}}
  try:
    with open(path) as f:
      meta = json.load(f)
  except (json.JSONDecodeError, UnicodeDecodeError) as e:
    raise DataFileError(path, f'not valid JSON ({e})') from None
  if not isinstance(meta, dict) or not isinstance(meta.get('splits'), dict):
    raise DataFileError(path, 'expected an object with a "splits" object')
  return meta


def _write_meta(directory: str, meta: Mapping[str, Any]) -> None:
  tmp = os.path.join(directory, f'.{META}.tmp')
  with open(tmp, 'w') as f:
    json.dump(meta, f, indent=2, sort_keys=True)
  os.replace(tmp, os.path.join(directory, META))


def has_splits(directory: str, splits: Iterable[str]) -> bool:
  meta = read_meta(directory)
  return all(s in meta['splits'] for s in splits)


def write_split(directory: str, split: str, features: np.ndarray, labels: np.ndarray, *,
                shard_size: int = 10_000, info: Mapping[str, Any] | None = None) -> None:
  """Stores one split as npz shards and records it in meta.json."""
  features, labels = np.asarray(features), np.asarray(labels)
  if len(features) != len(labels):
    raise ValueError(f'{len(features)} feature rows but {len(labels)} labels')
  if '/' in split or not split:
    raise ValueError(f'bad split name {split!r}')
  os.makedirs(directory, exist_ok=True)
  meta = read_meta(directory)
  shape, dtype = list(features.shape[1:]), str(features.dtype)
  if meta['splits'] and (meta.get('feature_shape') != shape or meta.get('dtype') != dtype):
    raise ValueError(f'{directory} holds features {meta.get("feature_shape")} '
                     f'{meta.get("dtype")}; refusing to add {shape} {dtype}')
  num_shards = max(1, math.ceil(len(features) / shard_size))
  names = []
  for i in range(num_shards):
    name = f'{split}-{i:05d}-of-{num_shards:05d}.npz'
    lo, hi = i * shard_size, (i + 1) * shard_size
    tmp = os.path.join(directory, f'.{name}.tmp')
    with open(tmp, 'wb') as f:
      np.savez(f, features=features[lo:hi], label=labels[lo:hi])
    os.replace(tmp, os.path.join(directory, name))
    names.append(name)
  meta['splits'][split] = {'num_examples': int(len(features)), 'shards': names,
                           'shard_size': int(shard_size)}
  meta['feature_shape'], meta['dtype'] = shape, dtype
  if info is not None:
    meta['info'] = dict(info)
  _write_meta(directory, meta)


class FeatureCacheSource:
  """Random access to one cached split: `source[i] -> {'features', 'label'}`."""

  def __init__(self, directory: str, split: str):
    meta = read_meta(directory)
    if split not in meta['splits']:
      raise FileNotFoundError(f'feature cache {directory!r} has no split {split!r} '
                              f'(has: {sorted(meta["splits"])})')
    self._dir, self.split = directory, split
    entry = meta['splits'][split]
    self._names, self._shard_size = entry['shards'], entry['shard_size']
    self._len = entry['num_examples']
    self._shards: dict[int, dict[str, np.ndarray]] = {}

  def _shard(self, i: int) -> dict[str, np.ndarray]:
    if i not in self._shards:
      path = os.path.join(self._dir, self._names[i])
      data = read_npz(path)
      if {'features', 'label'} - set(data) or len(data['features']) != len(data['label']):
        raise DataFileError(path, f'a shard holds equal-length "features" and "label", got '
                            f'{ {k: v.shape for k, v in data.items()} }')
      self._shards[i] = {'features': data['features'], 'label': data['label']}
    return self._shards[i]

  def __len__(self) -> int:
    return self._len

  def __getitem__(self, index: int) -> dict[str, np.ndarray]:
    if not 0 <= index < self._len:
      raise IndexError(f'index {index} out of range for {self._len} examples')
    shard = self._shard(index // self._shard_size)
    j = index % self._shard_size
    return {'features': shard['features'][j], 'label': shard['label'][j]}

  def arrays(self) -> dict[str, np.ndarray]:
    """The whole split in memory: {'features': (n, ...), 'label': (n,)}."""
    parts = [self._shard(i) for i in range(len(self._names))]
    return {k: np.concatenate([p[k] for p in parts]) for k in ('features', 'label')}

  def __repr__(self) -> str:
    return f'FeatureCacheSource({self._dir!r}, {self.split!r}, len={self._len})'
