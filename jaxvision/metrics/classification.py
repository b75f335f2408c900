"""Classification metrics: top-1 correctness and softmax cross-entropy per example.

Written with jax.numpy so evaluators can reduce them inside the jitted evaluation step
(`jaxvision.evaluators.classification`); they accept numpy arrays as well.
"""

from __future__ import annotations

import jax.numpy as jnp


def correct(logits, labels):
  """(N,) bool: the arg-max class equals the integer label."""
  return jnp.argmax(logits, axis=-1) == labels


def softmax_xent(logits, labels):
  """(N,) cross-entropy -log softmax(logits)[label], stable (max subtracted first)."""
  logits = jnp.asarray(logits)
  logp = logits - jnp.max(logits, -1, keepdims=True)
  logp = logp - jnp.log(jnp.sum(jnp.exp(logp), -1, keepdims=True))
  return -jnp.take_along_axis(logp, jnp.asarray(labels)[..., None], axis=-1)[..., 0]
