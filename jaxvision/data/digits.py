"""The real 8x8 handwritten digits that scikit-learn ships (UCI optdigits test set).

1,797 images of 10 classes, 16 grey levels, read from the csv.gz inside the installed
scikit-learn wheel (nothing is downloaded).  Split deterministically (a fixed
permutation, seed 0) into train (1,257), val (180) and test (360); `train_full` is
train + val.
"""

from __future__ import annotations

import functools

import numpy as np

from jaxvision.data.sources import ArraySource

SPLITS = {'train': (0, 1257), 'val': (1257, 1437), 'train_full': (0, 1437),
          'test': (1437, 1797), 'all': (0, 1797)}
NUM_CLASSES = 10
IMAGE_SHAPE = (8, 8, 1)


@functools.lru_cache(maxsize=1)
def _load() -> tuple[np.ndarray, np.ndarray]:
  from sklearn.datasets import load_digits  # pylint: disable=g-import-not-at-top
  d = load_digits()
  images = (d.images.astype(np.float32) / 16.0)[..., None]  # [0, 1], (N, 8, 8, 1)
  labels = d.target.astype(np.int32)
  perm = np.random.default_rng(0).permutation(len(labels))
  return images[perm], labels[perm]


def load(split: str) -> dict[str, np.ndarray]:
  """{'image': float32 (N, 8, 8, 1) in [0, 1], 'label': int32 (N,)} for one split."""
  if split not in SPLITS:
    raise ValueError(f'unknown digits split {split!r}; valid splits: {sorted(SPLITS)}')
  images, labels = _load()
  lo, hi = SPLITS[split]
  return {'image': images[lo:hi], 'label': labels[lo:hi]}


def source(split: str) -> ArraySource:
  return ArraySource(load(split))
