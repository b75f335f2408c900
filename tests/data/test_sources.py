"""jaxvision.data.sources: in-memory and memory-mapped array sources (TfdsSource:
tests/data/test_tfds_source.py)."""

import numpy as np
import pytest

from jaxvision.data import sources
from jaxvision.data.errors import DataFileError


def test_array_source_indexes_every_field():
  src = sources.ArraySource({'x': np.arange(12).reshape(4, 3), 'y': np.array([5, 6, 7, 8])})
  assert len(src) == 4
  item = src[2]
  np.testing.assert_array_equal(item['x'], [6, 7, 8])
  assert int(item['y']) == 7 and isinstance(item['y'], np.ndarray)
  assert 'len=4' in repr(src)
  with pytest.raises(ValueError, match='different lengths'):
    sources.ArraySource({'x': np.zeros(3), 'y': np.zeros(4)})
  with pytest.raises(ValueError, match='at least one field'):
    sources.ArraySource({})


def test_array_folder_round_trip_is_memory_mapped(tmp_path):
  fields = {'image': np.random.default_rng(0).random((5, 2, 2)).astype(np.float32),
            'label': np.arange(5, dtype=np.int32), 'name': np.array(list('abcde'))}
  sources.save_array_folder(str(tmp_path), fields)
  assert not [n for n in (tmp_path).iterdir() if n.name.endswith('.tmp')]
  src = sources.load_array_folder(str(tmp_path))
  assert not src.fields['image'].flags.owndata   # a view of the mapped file, not a copy
  for i in range(5):
    np.testing.assert_array_equal(src[i]['image'], fields['image'][i])
    assert src[i]['name'] == fields['name'][i]
  only = sources.load_array_folder(str(tmp_path), ['label'])
  assert list(only.fields) == ['label']


def test_array_folder_errors_name_the_problem(tmp_path):
  with pytest.raises(FileNotFoundError, match='does not exist'):
    sources.load_array_folder(str(tmp_path / 'nope'))
  with pytest.raises(FileNotFoundError, match='holds no .npy files'):
    sources.load_array_folder(str(tmp_path))
  sources.save_array_folder(str(tmp_path), {'x': np.zeros((3, 2))})
  with pytest.raises(FileNotFoundError, match="field 'y' missing"):
    sources.load_array_folder(str(tmp_path), ['x', 'y'])
  data = (tmp_path / 'x.npy').read_bytes()
  (tmp_path / 'x.npy').write_bytes(data[:-8])   # truncated
  with pytest.raises(DataFileError, match='x.npy'):
    sources.load_array_folder(str(tmp_path))
