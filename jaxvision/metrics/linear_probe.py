"""Closed-form L2-regularised least-squares linear probe (big_vision's few-shot evaluator).

The few-shot linear classifier of google-research/big_vision
`big_vision/evaluators/fewshot_lsr.py`, used by FroFA (Bär et al., CVPR 2024) as its
linear-probe baseline:

1. whiten the features with the training mean and std (+1e-5);
2. append a constant feature `BIAS_CONSTANT` = 100 (a bias that is barely regularised);
3. targets are one-hot labels mapped to {-1, +1};
4. solve  min_W ||X W - Y||^2 + l2 ||W||^2  in closed form through the eigendecomposition
   of X^T X (N >= D: W = Q (E + l2)^-1 Q^T X^T Y) or X X^T (D > N:
   W = X^T Q (E + l2)^-1 Q^T Y), whichever matrix is smaller;
5. predict the argmax of X_test W.

`fit` caches the eigendecomposition, so `weights(cache, l2)` is cheap for a sweep over
l2 values (as big_vision's cache allows).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

BIAS_CONSTANT = 100.0
STD_EPS = 1e-5


def _check(x, y=None):
  if x.ndim != 2:
    raise ValueError(f'linear probe features must be (N, D), got shape {x.shape}')
  if y is not None and (y.ndim != 1 or y.shape[0] != x.shape[0]):
    raise ValueError(f'labels must be (N,) for {x.shape[0]} examples, got {y.shape}')
  if not bool(jnp.all(jnp.isfinite(x))):
    raise ValueError('linear probe features contain NaN or inf')


def design_matrix(x, mean, std):
  """Whitened features with the constant bias column appended."""
  x = (x - mean) / std
  return jnp.pad(x, ((0, 0), (0, 1)), constant_values=BIAS_CONSTANT)


@functools.partial(jax.jit, static_argnums=(2,))
def _cache(x, y, num_classes):
  mean = jnp.mean(x, axis=0, keepdims=True)
  std = jnp.std(x, axis=0, keepdims=True) + STD_EPS
  xd = design_matrix(x, mean, std)
  targets = 2.0 * jax.nn.one_hot(y, num_classes, dtype=xd.dtype) - 1.0
  n, d = xd.shape
  if n >= d:
    eigs, q = jnp.linalg.eigh(xd.T @ xd)
    lhs, rhs = q, q.T @ (xd.T @ targets)
  else:
    eigs, q = jnp.linalg.eigh(xd @ xd.T)
    lhs, rhs = xd.T @ q, q.T @ targets
  return {'eigs': eigs, 'lhs': lhs, 'rhs': rhs, 'mean': mean, 'std': std}


def fit(x, y, num_classes: int):
  """Caches what every l2 needs: whitening stats and the eigendecomposition."""
  x = jnp.asarray(x)
  x = x if x.dtype in (jnp.float32, jnp.float64) else x.astype(jnp.float32)
  y = jnp.asarray(y, jnp.int32)
  _check(x, y)
  if int(jnp.max(y)) >= num_classes or int(jnp.min(y)) < 0:
    raise ValueError(f'labels must be in [0, {num_classes}), got [{int(jnp.min(y))}, '
                     f'{int(jnp.max(y))}]')
  return _cache(x, y, num_classes)


@jax.jit
def weights(cache, l2_reg):
  """W (D + 1, K) of the regularised least-squares problem for this l2."""
  scaling = 1.0 / (cache['eigs'] + l2_reg)
  return (cache['lhs'] * scaling[None, :]) @ cache['rhs']


@jax.jit
def predict(cache, w, x):
  """Scores (N, K) of new features x (N, D)."""
  return design_matrix(x, cache['mean'], cache['std']) @ w


def accuracy(cache, x, y, l2_reg) -> float:
  """Top-1 accuracy of the probe with regularisation `l2_reg` on (x, y)."""
  x = jnp.asarray(x, cache['mean'].dtype)
  _check(x, jnp.asarray(y))
  scores = predict(cache, weights(cache, l2_reg), x)
  return float(jnp.mean(jnp.argmax(scores, axis=-1) == jnp.asarray(y)))
