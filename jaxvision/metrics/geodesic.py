"""Shape correspondence error: geodesic error and its cumulative curve (PCK).

The protocol of dense shape matching benchmarks (Kim et al., "Blended intrinsic maps",
SIGGRAPH 2011; used by functional-map methods such as Hybrid Functional Maps, CVPR
2024): a predicted map sends each source vertex to a target vertex; its error is the
geodesic distance on the target between the predicted and the true vertex, normalised
by the square root of the target's surface area (the distance matrix is given already
normalised, or `normalize` divides it).  Reported: the mean error per shape pair,
averaged over pairs; the PCK curve = fraction of all vertices with error <= t for
thresholds t; its AUC = the trapezoidal area under the curve divided by the threshold
range (1.0 = every vertex exact).
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np


def vertex_errors(geodesic, predicted, truth):
  """Per-vertex errors D[pred_i, truth_i] (works batched: (..., V, V), (..., N), (..., N))."""
  geodesic = jnp.asarray(geodesic)
  predicted = jnp.asarray(predicted).astype(jnp.int32)
  truth = jnp.asarray(truth).astype(jnp.int32)
  if predicted.shape != truth.shape:
    raise ValueError(f'predicted {predicted.shape} and true {truth.shape} maps differ')
  if geodesic.shape[-1] != geodesic.shape[-2] or geodesic.ndim != predicted.ndim + 1:
    raise ValueError(f'geodesic distances must be (..., V, V) for maps {predicted.shape}, '
                     f'got {geodesic.shape}')
  rows = jnp.take_along_axis(geodesic, predicted[..., :, None], axis=-2)   # (..., N, V)
  return jnp.take_along_axis(rows, truth[..., :, None], axis=-1)[..., 0]


def pck_counts(errors, thresholds, weights=None):
  """(T,) number of (weighted) vertices with error <= each threshold."""
  errors = jnp.asarray(errors)
  w = jnp.ones_like(errors) if weights is None else jnp.asarray(weights, errors.dtype)
  below = errors.reshape(-1)[None, :] <= jnp.asarray(thresholds, errors.dtype)[:, None]
  return jnp.sum(below * w.reshape(-1)[None, :], axis=1)


def pck_auc(thresholds, curve) -> float:
  """Trapezoidal area under the PCK curve over the threshold range, divided by it."""
  t, c = np.asarray(thresholds, np.float64), np.asarray(curve, np.float64)
  if t.ndim != 1 or t.shape != c.shape or len(t) < 2 or np.any(np.diff(t) <= 0):
    raise ValueError('thresholds must be >= 2 increasing values, one per curve point')
  return float(np.sum(0.5 * (c[1:] + c[:-1]) * np.diff(t)) / (t[-1] - t[0]))


def geodesic_error(geodesic, predicted, truth, thresholds, *, normalize: float = 1.0):
  """numpy convenience for one pair: {'mean_error', 'pck' (T,), 'auc'}."""
  d = np.asarray(geodesic, np.float64) / normalize
  err = np.asarray(vertex_errors(d, predicted, truth))
  curve = np.asarray(pck_counts(err, thresholds)) / err.size
  return {'mean_error': float(err.mean()), 'pck': curve, 'auc': pck_auc(thresholds, curve)}
