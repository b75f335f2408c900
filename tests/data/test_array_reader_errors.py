"""Array-file readers refuse bad files by name; no data file can run code (issue 10, 10-12)."""

from __future__ import annotations

import json
import os
import pickle
import struct

import numpy as np
import pytest

from jaxvision.data import feature_cache
from jaxvision.data import mvtec3d
from jaxvision.data import sources
from jaxvision.data import word_vectors as wv
from tests.data.refusals import refused


# --- .npy folders and .npz feature caches -----------------------------------------------

@pytest.mark.parametrize('cut', [0, 5, 60, -8], ids=['empty', 'magic', 'header', 'data'])
def test_truncated_npy_field_is_refused(tmp_path, cut):
  sources.save_array_folder(str(tmp_path), {'x': np.arange(20.0).reshape(4, 5)})
  path = tmp_path / 'x.npy'
  path.write_bytes(path.read_bytes()[:cut])
  with refused(path, 'npy'):
    sources.load_array_folder(str(tmp_path))


def test_npy_header_claiming_a_terabyte_is_refused(tmp_path):
  path = tmp_path / 'x.npy'
  header = {'descr': '<f8', 'fortran_order': False, 'shape': (10**11, 16)}
  with open(path, 'wb') as f:
    np.lib.format.write_array_header_1_0(f, header)
    f.write(b'\0' * 64)
  with refused(path, 'declares'):
    sources.load_array_folder(str(tmp_path))


def test_pickled_npy_is_refused_without_unpickling(tmp_path):
  np.save(tmp_path / 'x.npy', np.array([{'a': 1}], dtype=object), allow_pickle=True)
  with refused(tmp_path / 'x.npy', 'pickle'):
    sources.load_array_folder(str(tmp_path))


def _cache(tmp_path):
  feature_cache.write_split(str(tmp_path), 'train', np.ones((6, 4), np.float32), np.arange(6))
  return tmp_path / 'train-00000-of-00001.npz'


@pytest.mark.parametrize('cut', [0, 30, 200, -40], ids=['empty', 'local_header', 'member',
                                                        'directory'])
def test_truncated_npz_shard_is_refused(tmp_path, cut):
  path = _cache(tmp_path)
  path.write_bytes(path.read_bytes()[:cut])
  with refused(path, 'npz'):
    feature_cache.FeatureCacheSource(str(tmp_path), 'train')[0]


def test_npz_shard_with_nan_or_complex_features_is_refused(tmp_path):
  path = _cache(tmp_path)
  feats = np.ones((6, 4), np.float32)
  feats[2, 1] = np.nan
  np.savez(path, features=feats, label=np.arange(6))
  with refused(path, "'features'", 'non-finite'):
    feature_cache.FeatureCacheSource(str(tmp_path), 'train').arrays()
  np.savez(path, features=feats.astype(np.complex64), label=np.arange(6))
  with refused(path, 'complex'):
    feature_cache.FeatureCacheSource(str(tmp_path), 'train').arrays()


def test_feature_cache_meta_that_is_not_json_is_refused(tmp_path):
  _cache(tmp_path)
  (tmp_path / 'meta.json').write_text('{"splits": {"train"')
  with refused(tmp_path / 'meta.json', 'json'):
    feature_cache.FeatureCacheSource(str(tmp_path), 'train')


# --- MVTec 3D-AD tiffs ---------------------------------------------------------------------

def _tiff(tmp_path, xyz):
  tifffile = pytest.importorskip('tifffile')
  path = tmp_path / 'x.tiff'
  tifffile.imwrite(path, xyz, photometric='rgb')
  return path


@pytest.mark.parametrize('value', [np.nan, np.inf])
def test_mvtec_tiff_with_nan_or_inf_is_refused(tmp_path, value):
  xyz = np.random.default_rng(0).normal(size=(8, 6, 3)).astype(np.float32)
  xyz[3, 2, 1] = value
  path = _tiff(tmp_path, xyz)
  with refused(path, 'non-finite', '(3, 2, 1)'):
    mvtec3d.read_xyz(str(path))


def test_mvtec_uint8_rgb_tiff_is_not_read_as_xyz(tmp_path):
  path = _tiff(tmp_path, np.full((8, 6, 3), 200, np.uint8))
  with refused(path, 'uint8'):
    mvtec3d.read_xyz(str(path))


@pytest.mark.parametrize('cut', [0, 8, 200, -30], ids=['empty', 'header', 'ifd', 'data'])
def test_truncated_mvtec_tiff_is_refused(tmp_path, cut):
  path = _tiff(tmp_path, np.ones((8, 6, 3), np.float32))
  path.write_bytes(path.read_bytes()[:cut])
  with refused(path):
    mvtec3d.read_xyz(str(path))


def test_mvtec_mask_that_is_not_an_image_is_refused(tmp_path):
  path = tmp_path / 'gt.png'
  path.write_bytes(b'\x89PNG\r\n\x1a\n' + b'\0' * 10)
  with refused(path, 'mask'):
    mvtec3d.read_gt(str(path))


# --- word vectors: no code from a data file -------------------------------------------------

class _RunsACommand:
  def __init__(self, marker):
    self.marker = marker

  def __reduce__(self):
    return (os.system, (f'touch {self.marker}',))


def _glove(tmp_path, idx_bytes):
  wv.write_glove_layout(str(tmp_path), {'walk': np.arange(3.0), 'run': np.ones(3)})
  (tmp_path / 'our_vab_idx.pkl').write_bytes(idx_bytes)
  return tmp_path / 'our_vab_idx.pkl'


def test_malicious_index_pickle_is_refused_and_runs_nothing(tmp_path):
  marker = tmp_path / 'pwned'
  path = _glove(tmp_path, pickle.dumps(_RunsACommand(marker)))
  with refused(path, 'refusing', 'system'):
    wv.read_glove_layout(str(tmp_path))
  assert not marker.exists(), 'the pickle ran its command'


@pytest.mark.parametrize('obj, words', [
    (['walk', 'run'], ('dict',)),
    ({'walk': 0, 'run': 5}, ('outside',)),
    ({'walk': 0, 'run': '1'}, ('str -> int',)),
    ({'walk': 0, 'run': True}, ('str -> int',)),
    ({'walk': 0, 3: 1}, ('str -> int',)),
    (None, ('dict',)),
], ids=['list', 'row_out_of_range', 'str_row', 'bool_row', 'int_word', 'none'])
def test_index_pickle_must_be_a_plain_word_to_row_dict(tmp_path, obj, words):
  path = _glove(tmp_path, pickle.dumps(obj))
  with refused(path, *words):
    wv.read_glove_layout(str(tmp_path))


def test_truncated_index_pickle_and_nan_vectors_are_refused(tmp_path):
  path = _glove(tmp_path, pickle.dumps({'walk': 0, 'run': 1})[:-4])
  with refused(path, 'not a plain pickled dict'):
    wv.read_glove_layout(str(tmp_path))
  _glove(tmp_path, pickle.dumps({'walk': 0, 'run': 1}))
  np.save(tmp_path / 'our_vab_data.npy', np.array([[0, 1, np.nan], [1, 1, 1.0]]))
  with refused(tmp_path / 'our_vab_data.npy', 'non-finite'):
    wv.read_glove_layout(str(tmp_path))


def _safetensors(path, header, data=b''):
  raw = json.dumps(header).encode()
  path.write_bytes(struct.pack('<Q', len(raw)) + raw + data)
  return path


@pytest.mark.parametrize('header, data, words', [
    (None, b'', ('too short',)),
    ({'t': {'dtype': 'F32', 'shape': [10**9, 384], 'data_offsets': [0, 4 * 384 * 10**9]}},
     b'\0' * 16, ('outside the file',)),
    ({'t': {'dtype': 'F32', 'shape': [2, 2], 'data_offsets': [0, 12]}}, b'\0' * 12,
     ('does not fill',)),
    ({'t': {'dtype': 'F32', 'shape': [2], 'data_offsets': [0, 8]}},
     np.array([1, np.nan], np.float32).tobytes(), ('non-finite',)),
    ({'t': {'dtype': 'C64', 'shape': [1], 'data_offsets': [0, 8]}}, b'\0' * 8, ('dtype',)),
], ids=['empty', 'oversized', 'shape_mismatch', 'nan', 'complex'])
def test_bad_safetensors_are_refused(tmp_path, header, data, words):
  path = tmp_path / 'model.safetensors'
  if header is None:
    path.write_bytes(b'\x01\x02')
  else:
    _safetensors(path, header, data)
  with refused(path, *words):
    wv.read_safetensors_tensor(str(path), 't')
