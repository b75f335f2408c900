"""The parameter-free scoring head of Coupled Laplacian (Bastico et al., CVPR 2024, Eq. 9).

The method learns nothing: eigenmaps come from a sparse eigensolver, registration from
ICP/CPD.  What remains as a "model" for the trainer's contract is the point-wise score:
the cosine distance between the coupled-eigenmap rows of matched points.  It has no
parameters, so a couplap run is evaluate-only (`total_steps = 0`).
"""

from __future__ import annotations

import flax.linen as nn
import jax.numpy as jnp


class CosineMatchScore(nn.Module):
  """(B, maps) source rows, (B, maps) target rows -> (B,) cosine distances in [0, 2]."""

  @nn.compact
  def __call__(self, source_maps, target_maps, *, train: bool = False):
    del train
    num = jnp.sum(source_maps * target_maps, axis=-1)
    den = jnp.linalg.norm(source_maps, axis=-1) * jnp.linalg.norm(target_maps, axis=-1)
    sim = jnp.where(den > 0, num / jnp.maximum(den, 1e-30), 0.0)
    return jnp.clip(1.0 - sim, 0.0, 2.0)
