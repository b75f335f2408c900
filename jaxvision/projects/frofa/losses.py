"""FroFA's training loss (Bär et al., CVPR 2024, Sec. 3): softmax cross-entropy of the
light-weight head on frozen-backbone features augmented in feature space (`augment.py`),
with label smoothing; for sweeps of replicated heads (`replicas.py`), the sum of the
replicas' mean losses, so each replica's gradient is that of its own head."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

from jaxvision.projects.frofa import augment
from jaxvision.projects.frofa import replicas


def loss_fn(params, batch, rng, *, model, config):
  """Softmax cross-entropy of the head on FroFA-augmented features (the frozen backbone
  is not involved: features come from the cache)."""
  policy = augment.make_policy(config.augment)
  k_aug, k_dropout = jax.random.split(rng)
  targets = jax.nn.one_hot(batch['label'], config.model.num_classes, dtype=jnp.float32)
  augment_fn = lambda k, f, t: augment.augment_batch(policy, k, f, t)
  replicated = bool(config.model.get('num_replicas', 0))
  if replicated:   # (B, R, ...): each replica's own examples and keys
    feats, targets = replicas.augment_replicas(augment_fn, k_aug, batch['features'], targets)
    if config.loss.get('replica_grad_clip_norm', 0.0):
      params = replicas.clip_per_replica(params, float(config.loss.replica_grad_clip_norm))
  else:
    feats, targets = augment_fn(k_aug, batch['features'], targets)
  if config.loss.label_smoothing:
    targets = optax.smooth_labels(targets, config.loss.label_smoothing)
  logits = model.apply({'params': params}, feats, train=True, rngs={'dropout': k_dropout})
  per_example = optax.softmax_cross_entropy(logits.astype(jnp.float32), targets)
  accuracy = jnp.mean(jnp.argmax(logits, -1) == batch['label'])
  if replicated:
    # The sum of the replicas' mean losses: replica r's gradient is its own head's.
    loss = jnp.sum(jnp.mean(per_example, axis=0))
    return loss, {'accuracy': accuracy, 'loss_per_replica': loss / per_example.shape[1]}
  return jnp.mean(per_example), {'accuracy': accuracy}
