"""Text-to-motion generation metrics over evaluator embeddings (Guo et al., CVPR 2022).

The metrics of "Generating Diverse and Natural 3D Human Motions from Text" (Guo et al.
2022, Sec. 5), computed on the text and motion embeddings of a pretrained text/motion
matching evaluator (`jaxvision.nn.t2m_evaluator`), as in the public evaluation code
(EricGuo5513/text-to-motion `utils/metrics.py`, copied into MDM and FlowMDM as
`data_loaders/humanml/utils/metrics.py`, driven by `eval/eval_humanml.py`):

* **FID** (Heusel et al. 2017): the Frechet distance between Gaussians fitted to two
  embedding sets, ||mu1 - mu2||^2 + Tr(S1 + S2 - 2 (S1 S2)^(1/2)), with the matrix
  square root from `scipy.linalg.sqrtm` (retried with eps on the diagonals if it is
  not finite; a small imaginary part is dropped, a large one is an error).
* **Diversity**: the mean Euclidean distance between `times` (300) random pairs: two
  independent draws of `times` indices without replacement.
* **Multimodality**: the same within the generations of each text: embeddings
  (texts, repeats, dim), `times` (10) repeat indices drawn twice, shared by all texts.
* **R-precision (top-1/2/3)** and **matching score** (MM-Dist): the embeddings are cut
  into consecutive batches of 32 (upstream loaders use `drop_last=True`); inside a
  batch each text is ranked against its own motion and the 31 other motions by
  Euclidean distance; top-k counts a hit when the true motion is among the k nearest,
  and the matching score is the mean distance of the true pairs (the trace).  FlowMDM
  (`utils/metrics.py`) removes duplicate captions of a batch before ranking and rescales
  the hit count by batch / unique; pass `captions` to get that variant.

Random draws use a seeded `numpy.random.Generator` (upstream draws from numpy's global
state after `fixseed`), so a seed fixes the pairs.  Distances are clamped at 0 before
the square root (upstream's expanded form can go slightly negative and give NaN).
"""

from __future__ import annotations

from typing import Optional, Sequence, Union
import warnings

import numpy as np
import scipy.linalg

Seed = Union[int, np.random.Generator, None]

# Upstream's evaluation constants (eval_humanml.py, evaluator batch size).
R_PRECISION_BATCH = 32
DIVERSITY_TIMES = 300
MULTIMODALITY_TIMES = 10


def _embeddings(x, name: str, ndim: int = 2) -> np.ndarray:
  x = np.asarray(x, dtype=np.float64)
  if x.ndim != ndim:
    raise ValueError(f'{name} must have {ndim} dims, got shape {x.shape}')
  if not np.all(np.isfinite(x)):
    raise ValueError(f'{name} contains NaN or inf')
  return x


def _rng(seed: Seed) -> np.random.Generator:
  return seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)


def euclidean_distance_matrix(a, b) -> np.ndarray:
  """(N1, N2) Euclidean distances between the rows of a (N1, D) and b (N2, D)."""
  a = _embeddings(a, 'a')
  b = _embeddings(b, 'b')
  if a.shape[1] != b.shape[1]:
    raise ValueError(f'embedding sizes differ: {a.shape} vs {b.shape}')
  sq = (np.sum(a * a, axis=1, keepdims=True) - 2 * a @ b.T + np.sum(b * b, axis=1))
  return np.sqrt(np.maximum(sq, 0.0))


def activation_statistics(embeddings) -> tuple[np.ndarray, np.ndarray]:
  """Mean (D,) and unbiased covariance (D, D) of (N, D) embeddings, N >= 2."""
  x = _embeddings(embeddings, 'embeddings')
  if x.shape[0] < 2:
    raise ValueError(f'need at least 2 embeddings for a covariance, got {x.shape[0]}')
  return x.mean(axis=0), np.atleast_2d(np.cov(x, rowvar=False))


def _sqrtm(a: np.ndarray) -> np.ndarray:
  # Upstream passes disp=False (deprecated in SciPy 1.17); the result is the same, and a
  # singular product shows as non-finite entries, handled by the caller.
  with warnings.catch_warnings():
    warnings.simplefilter('ignore')
    return np.asarray(scipy.linalg.sqrtm(a))


def frechet_distance(mu1, sigma1, mu2, sigma2, eps: float = 1e-6) -> float:
  """Frechet distance between N(mu1, sigma1) and N(mu2, sigma2) (FID's formula)."""
  mu1, mu2 = np.atleast_1d(np.asarray(mu1, np.float64)), np.atleast_1d(np.asarray(mu2, np.float64))
  sigma1 = np.atleast_2d(np.asarray(sigma1, np.float64))
  sigma2 = np.atleast_2d(np.asarray(sigma2, np.float64))
  if mu1.shape != mu2.shape or mu1.ndim != 1:
    raise ValueError(f'means must be vectors of one size, got {mu1.shape} and {mu2.shape}')
  d = mu1.shape[0]
  if sigma1.shape != (d, d) or sigma2.shape != (d, d):
    raise ValueError(f'covariances must be ({d}, {d}), got {sigma1.shape} and {sigma2.shape}')
  for name, v in (('mu1', mu1), ('mu2', mu2), ('sigma1', sigma1), ('sigma2', sigma2)):
    if not np.all(np.isfinite(v)):
      raise ValueError(f'{name} contains NaN or inf')
  diff = mu1 - mu2
  covmean = _sqrtm(sigma1 @ sigma2)
  if not np.all(np.isfinite(covmean)):
    # The product is (nearly) singular: regularise both covariances, as upstream.
    offset = np.eye(d) * eps
    covmean = _sqrtm((sigma1 + offset) @ (sigma2 + offset))
  if np.iscomplexobj(covmean):
    if not np.allclose(np.diagonal(covmean).imag, 0, atol=1e-3):
      raise ValueError(f'sqrtm has an imaginary component {np.max(np.abs(covmean.imag)):g}')
    covmean = covmean.real
  return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2 * np.trace(covmean))


def fid(embeddings1, embeddings2, eps: float = 1e-6) -> float:
  """FID between two embedding sets (N1, D) and (N2, D): Gaussian fits, then Frechet."""
  mu1, s1 = activation_statistics(embeddings1)
  mu2, s2 = activation_statistics(embeddings2)
  if mu1.shape != mu2.shape:
    raise ValueError(f'embedding sizes differ: {mu1.shape[0]} vs {mu2.shape[0]}')
  return frechet_distance(mu1, s1, mu2, s2, eps)


def diversity(embeddings, times: int = DIVERSITY_TIMES, seed: Seed = 0) -> float:
  """Mean distance between `times` random pairs of the (N, D) embeddings (N > times)."""
  x = _embeddings(embeddings, 'embeddings')
  n = x.shape[0]
  if n <= times:
    raise ValueError(f'diversity over {times} pairs needs more than {times} embeddings, got {n}')
  rng = _rng(seed)
  first = rng.choice(n, times, replace=False)
  second = rng.choice(n, times, replace=False)
  return float(np.linalg.norm(x[first] - x[second], axis=1).mean())


def multimodality(embeddings, times: int = MULTIMODALITY_TIMES, seed: Seed = 0) -> float:
  """Mean distance between `times` random pairs of generations per text.

  embeddings: (texts, repeats, D), the embeddings of `repeats` generations per text
  (repeats > times); the same pair indices are used for every text, as upstream.
  """
  x = _embeddings(embeddings, 'embeddings', ndim=3)
  repeats = x.shape[1]
  if repeats <= times:
    raise ValueError(
        f'multimodality over {times} pairs needs more than {times} generations per text, '
        f'got {repeats}')
  rng = _rng(seed)
  first = rng.choice(repeats, times, replace=False)
  second = rng.choice(repeats, times, replace=False)
  return float(np.linalg.norm(x[:, first] - x[:, second], axis=2).mean())


def _batches(n: int, batch_size: int, drop_last: bool) -> list[slice]:
  if batch_size < 1:
    raise ValueError(f'batch_size must be positive, got {batch_size}')
  stop = n - n % batch_size if drop_last else n
  if stop == 0:
    raise ValueError(f'{n} pairs make no full batch of {batch_size} (drop_last=True)')
  return [slice(s, min(s + batch_size, stop)) for s in range(0, stop, batch_size)]


def top_k_hits(dist: np.ndarray, top_k: int) -> np.ndarray:
  """(top_k,) counts of rows whose own column (the diagonal) is among the k nearest.

  Rows are ranked with `np.argsort` as upstream's `calculate_top_k`; with fewer than k
  columns every row is a hit.
  """
  n = dist.shape[0]
  order = np.argsort(dist, axis=1)
  rank = np.argmax(order == np.arange(n)[:, None], axis=1)
  return np.array([np.sum(rank < k) for k in range(1, top_k + 1)], dtype=np.float64)


def matching_metrics(text_embeddings, motion_embeddings, *, batch_size: int = R_PRECISION_BATCH,
                     top_k: int = 3, captions: Optional[Sequence[str]] = None,
                     drop_last: bool = True) -> dict[str, np.ndarray | float]:
  """R-precision (top-1..top_k) and matching score, ranked within batches.

  text_embeddings, motion_embeddings: (N, D), row i of each being a true pair. Returns
  {'r_precision': (top_k,) array, 'matching_score': float, 'count': pairs used}.
  With `captions` (N strings), duplicate captions of a batch are dropped before
  ranking and the hits rescaled by batch / unique (FlowMDM's variant).
  """
  t = _embeddings(text_embeddings, 'text_embeddings')
  m = _embeddings(motion_embeddings, 'motion_embeddings')
  if t.shape != m.shape:
    raise ValueError(f'text and motion embeddings must match in shape: {t.shape} vs {m.shape}')
  if captions is not None:
    captions = np.asarray([str(c) for c in captions])
    if len(captions) != t.shape[0]:
      raise ValueError(f'{len(captions)} captions for {t.shape[0]} embeddings')
  if top_k < 1:
    raise ValueError(f'top_k must be positive, got {top_k}')
  hits = np.zeros(top_k)
  score_sum, count = 0.0, 0
  for sl in _batches(t.shape[0], batch_size, drop_last):
    dist = euclidean_distance_matrix(t[sl], m[sl])
    score_sum += np.trace(dist)
    if captions is None:
      batch_hits = top_k_hits(dist, top_k)
    else:
      unique = np.unique(captions[sl], return_index=True)[1]
      batch_hits = top_k_hits(dist[unique][:, unique], top_k) * (dist.shape[0] / len(unique))
    hits += batch_hits
    count += dist.shape[0]
  return {'r_precision': hits / count, 'matching_score': score_sum / count, 'count': count}


def r_precision(text_embeddings, motion_embeddings, **kwargs) -> np.ndarray:
  """(top_k,) R-precision; keyword arguments as `matching_metrics`."""
  return matching_metrics(text_embeddings, motion_embeddings, **kwargs)['r_precision']


def matching_score(text_embeddings, motion_embeddings, **kwargs) -> float:
  """Mean distance of the true text/motion pairs; keyword arguments as `matching_metrics`."""
  return matching_metrics(text_embeddings, motion_embeddings, **kwargs)['matching_score']


def confidence_interval(values, axis: int = 0) -> tuple[np.ndarray, np.ndarray]:
  """Mean and 1.96 std / sqrt(n) over replications (upstream's `get_metric_statistics`)."""
  v = np.asarray(values, dtype=np.float64)
  n = v.shape[axis]
  return v.mean(axis=axis), 1.96 * v.std(axis=axis) / np.sqrt(n)
