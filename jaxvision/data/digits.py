"""The real 8x8 handwritten digits that scikit-learn ships (UCI optdigits test set).

1,797 images of 10 classes, 16 grey levels, read from the csv.gz inside the installed
scikit-learn wheel (nothing is downloaded).  Split deterministically (a fixed
permutation, seed 0) into train (1,257), val (180) and test (360); `train_full` is
train + val.  `classes` keeps only some digit classes (e.g. '0-4'), their labels
renumbered 0..K-1 in the order given (class-disjoint transfer experiments).
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


def parse_classes(classes) -> tuple[int, ...]:
  """'' / None / () -> () (all classes); 'a-b' -> a..b; 'a+b+c' or ints -> that order."""
  if not classes:
    return ()
  if isinstance(classes, str):
    lo, dash, hi = classes.partition('-')
    try:
      out = (tuple(range(int(lo), int(hi) + 1)) if dash
             else tuple(int(c) for c in classes.split('+')))
    except ValueError:
      raise ValueError(f"digits classes {classes!r}: use 'a-b' (a range) or 'a+b+c'") from None
  else:
    out = tuple(int(c) for c in classes)
  if not out or len(set(out)) != len(out) or not all(0 <= c < NUM_CLASSES for c in out):
    raise ValueError(f'digits classes {classes!r}: need distinct classes in 0..'
                     f'{NUM_CLASSES - 1}, got {out}')
  return out


def load(split: str, classes=()) -> dict[str, np.ndarray]:
  """{'image': float32 (N, 8, 8, 1) in [0, 1], 'label': int32 (N,)} for one split.

  With `classes` (see `parse_classes`), only those digits, labelled by their position
  in `classes`.
  """
  if split not in SPLITS:
    raise ValueError(f'unknown digits split {split!r}; valid splits: {sorted(SPLITS)}')
  images, labels = _load()
  lo, hi = SPLITS[split]
  images, labels = images[lo:hi], labels[lo:hi]
  keep = parse_classes(classes)
  if keep:
    mask = np.isin(labels, keep)
    remap = np.full(NUM_CLASSES, -1, np.int32)
    remap[list(keep)] = np.arange(len(keep), dtype=np.int32)
    images, labels = images[mask], remap[labels[mask]]
  return {'image': images, 'label': labels}


def source(split: str, classes=()) -> ArraySource:
  return ArraySource(load(split, classes))
