"""Few-shot subsets (k examples per class) and the mean ± std over seeds.

Used by FroFA's few-shot protocol (Bär et al., CVPR 2024, Sec. 4) and any k-shot study.

The sampler is big_vision's (`evaluators/fewshot_lsr.py`): `numpy.random.default_rng(seed)`
permutes each class's indices in class order and the first k of each are taken, so for
one seed the 1-shot set is inside the 5-shot set, which is inside the 10-shot set.
"""

from __future__ import annotations

from typing import Iterable, Mapping

import numpy as np


def fewshot_indices(labels: np.ndarray, shots: int, seed: int,
                    num_classes: int | None = None) -> np.ndarray:
  """Indices of `shots` examples of every class (classes 0..num_classes-1), class-major."""
  labels = np.asarray(labels)
  if labels.ndim != 1:
    raise ValueError(f'labels must be 1-D, got shape {labels.shape}')
  if shots < 1:
    raise ValueError(f'shots must be >= 1, got {shots}')
  num_classes = int(labels.max()) + 1 if num_classes is None else num_classes
  rng = np.random.default_rng(seed)
  out = []
  for c in range(num_classes):
    idx = rng.permutation(np.flatnonzero(labels == c))
    if len(idx) < shots:
      raise ValueError(f'class {c} has {len(idx)} examples, fewer than {shots} shots')
    out.append(idx[:shots])
  return np.concatenate(out)


def balanced_pool(labels: np.ndarray, per_class: int, seed: int = 0) -> np.ndarray:
  """Sorted indices of up to `per_class` random examples per class (0 = all)."""
  labels = np.asarray(labels)
  if per_class <= 0:
    return np.arange(len(labels))
  rng = np.random.default_rng(seed)
  keep = [rng.permutation(np.flatnonzero(labels == c))[:per_class] for c in np.unique(labels)]
  return np.sort(np.concatenate(keep))


def mean_std(values: Iterable[float]) -> tuple[float, float]:
  """Mean and (population) std over seeds."""
  v = np.asarray(list(values), np.float64)
  if v.size == 0:
    raise ValueError('no values to average')
  return float(v.mean()), float(v.std())


def summarize(per_seed: Mapping[int, float]) -> dict[str, float]:
  m, s = mean_std(per_seed.values())
  return {'mean': m, 'std': s, 'num_seeds': len(per_seed)}
