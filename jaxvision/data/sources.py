"""Random-access data sources for grain: in-memory arrays, .npy folders, tfds.

Each source has `__len__` and `__getitem__(i) -> dict[str, np.ndarray]`, which is all
grain's `MapDataset.source` needs.  The pipeline (`pipeline.py`) does shuffling,
sharding per process, preprocessing and batching on top.
"""

from __future__ import annotations

import os
from typing import Mapping, Sequence

import numpy as np

from jaxvision.data.errors import read_npy


class ArraySource:
  """Examples stored as equal-length arrays, one per field (in memory or memory-mapped)."""

  def __init__(self, fields: Mapping[str, np.ndarray]):
    if not fields:
      raise ValueError('ArraySource needs at least one field')
    lengths = {k: len(v) for k, v in fields.items()}
    if len(set(lengths.values())) != 1:
      raise ValueError(f'ArraySource fields have different lengths: {lengths}')
    self._fields = dict(fields)
    self._len = next(iter(lengths.values()))

  def __len__(self) -> int:
    return self._len

  def __getitem__(self, index: int) -> dict[str, np.ndarray]:
    return {k: np.asarray(v[index]) for k, v in self._fields.items()}

  def __repr__(self) -> str:
    shapes = {k: (v.shape, str(v.dtype)) for k, v in self._fields.items()}
    return f'ArraySource(len={self._len}, fields={shapes})'

  @property
  def fields(self) -> dict[str, np.ndarray]:
    return self._fields


def save_array_folder(directory: str, fields: Mapping[str, np.ndarray]) -> None:
  """Writes one `<field>.npy` per field (the on-disk layout `load_array_folder` reads)."""
  os.makedirs(directory, exist_ok=True)
  for name, value in fields.items():
    tmp = os.path.join(directory, f'.{name}.npy.tmp')
    with open(tmp, 'wb') as f:
      np.save(f, np.asarray(value))
    os.replace(tmp, os.path.join(directory, f'{name}.npy'))


def load_array_folder(directory: str, fields: Sequence[str] | None = None) -> ArraySource:
  """Memory-maps the `<field>.npy` files of a folder as an ArraySource."""
  if not os.path.isdir(directory):
    raise FileNotFoundError(f'array folder {directory!r} does not exist')
  names = fields or sorted(f[:-4] for f in os.listdir(directory) if f.endswith('.npy'))
  if not names:
    raise FileNotFoundError(f'array folder {directory!r} holds no .npy files')
  out = {}
  for name in names:
    path = os.path.join(directory, f'{name}.npy')
    if not os.path.exists(path):
      raise FileNotFoundError(f'field {name!r} missing: {path} does not exist')
    # Memory-mapped; truncated / pickled files are refused by name (values not scanned).
    out[name] = read_npy(path, f'field {name!r}', mmap=True, finite=False, kinds='biufcUS')
  return ArraySource(out)


class TfdsSource:
  """A tfds dataset prepared under `data_dir`, read with random access (array_record).

  `fields` maps the names the project uses to tfds feature names, e.g.
  `{'image': 'image', 'label': 'label'}`.  Nothing is downloaded: the dataset must
  already be prepared (`tfds build` or a builder run) in `data_dir`.
  """

  def __init__(self, name: str, split: str, data_dir: str | None,
               fields: Mapping[str, str] | None = None):
    import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
    try:
      self._source = tfds.data_source(name, split=split, data_dir=data_dir, download=False)
    except Exception as e:  # tfds raises several types for a missing dataset
      raise FileNotFoundError(
          f'tfds dataset {name!r} split {split!r} is not prepared under data_dir={data_dir!r} '
          f'(nothing is downloaded at run time; prepare it first): {e}') from e
    self._fields = dict(fields) if fields else None
    self.name, self.split = name, split

  def __len__(self) -> int:
    return len(self._source)

  def __getitem__(self, index: int) -> dict[str, np.ndarray]:
    example = self._source[index]
    if self._fields is None:
      return {k: np.asarray(v) for k, v in example.items()}
    return {k: np.asarray(example[v]) for k, v in self._fields.items()}

  def __repr__(self) -> str:
    return f'TfdsSource({self.name!r}, split={self.split!r}, len={len(self)})'
