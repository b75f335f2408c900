"""Classification losses: softmax cross-entropy (with label smoothing) and sigmoid
cross-entropy (big_vision's ImageNet recipes train ViTs with the latter), and the
project's `loss_fn` (the contract's training loss: the ViT's logits, their mean loss and
the batch accuracy)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

LOSSES = ('softmax_xent', 'sigmoid_xent')


def classification_loss(logits: jax.Array, labels: jax.Array, *, kind: str = 'softmax_xent',
                        label_smoothing: float = 0.0) -> jax.Array:
  """Per-example loss for integer `labels` (batch,) and `logits` (batch, classes)."""
  num_classes = logits.shape[-1]
  targets = jax.nn.one_hot(labels, num_classes, dtype=jnp.float32)
  if label_smoothing:
    targets = optax.smooth_labels(targets, label_smoothing)
  logits = logits.astype(jnp.float32)
  if kind == 'softmax_xent':
    return optax.softmax_cross_entropy(logits, targets)
  if kind == 'sigmoid_xent':
    # Summed over classes, as big_vision's sigmoid_xent.
    return jnp.sum(optax.sigmoid_binary_cross_entropy(logits, targets), axis=-1)
  raise ValueError(f'unknown loss {kind!r}; valid: {LOSSES}')


def loss_fn(params, batch, rng, *, model, config):
  logits, _ = model.apply({'params': params}, batch['image'], train=True,
                          rngs={'dropout': rng})
  per_example = classification_loss(
      logits, batch['label'], kind=config.loss.kind,
      label_smoothing=config.loss.label_smoothing)
  accuracy = jnp.mean(jnp.argmax(logits, -1) == batch['label'])
  return jnp.mean(per_example), {'accuracy': accuracy}
