"""jaxvision.data.feature_cache: extraction in fixed batches, npz shards, grain reading."""

from __future__ import annotations

import grain
import numpy as np
import pytest

from jaxvision.data import feature_cache


def test_extract_pads_the_last_batch_and_checks_values():
  calls = []
  def fn(batch):
    calls.append(batch.shape)
    return batch.sum(axis=(1, 2))
  images = np.arange(10 * 2 * 2 * 3, dtype=np.float32).reshape(10, 2, 2, 3)
  out = feature_cache.extract(fn, images, batch_size=4)
  np.testing.assert_allclose(out, images.sum(axis=(1, 2)))
  assert calls == [(4, 2, 2, 3)] * 3
  with pytest.raises(ValueError, match='non-finite'):
    feature_cache.extract(lambda b: b * np.nan, images, batch_size=4)


def test_shards_roundtrip_through_grain(tmp_path):
  rng = np.random.default_rng(0)
  feats = rng.normal(size=(23, 2, 2, 5)).astype(np.float32)
  labels = np.arange(23) % 4
  d = str(tmp_path / 'cache')
  feature_cache.write_split(d, 'train', feats, labels, shard_size=10, info={'backbone': 'x'})
  feature_cache.write_split(d, 'test', feats[:3], labels[:3])
  meta = feature_cache.read_meta(d)
  assert meta['splits']['train']['shards'] == [
      'train-00000-of-00003.npz', 'train-00001-of-00003.npz', 'train-00002-of-00003.npz']
  assert meta['feature_shape'] == [2, 2, 5] and meta['info'] == {'backbone': 'x'}
  assert feature_cache.has_splits(d, ['train', 'test']) and not feature_cache.has_splits(
      d, ['val'])
  src = feature_cache.FeatureCacheSource(d, 'train')
  ds = grain.MapDataset.source(src).batch(23)
  batch = next(iter(ds.to_iter_dataset()))
  np.testing.assert_array_equal(batch['features'], feats)
  np.testing.assert_array_equal(batch['label'], labels)
  np.testing.assert_array_equal(src.arrays()['features'], feats)
  with pytest.raises(IndexError):
    src[23]
  with pytest.raises(FileNotFoundError, match="no split 'val'"):
    feature_cache.FeatureCacheSource(d, 'val')
  with pytest.raises(ValueError, match='refusing'):
    feature_cache.write_split(d, 'val', feats[:, :1], labels)
  with pytest.raises(ValueError, match='labels'):
    feature_cache.write_split(d, 'val', feats, labels[:3])
