"""FroFA's lightweight heads on frozen feature maps (Sec. 3, "lightweight model").

`MAPClassifier`: multi-head attention pooling (`jaxvision.nn.vit.MAPHead`, big_vision's
MAPHead: a learned probe attends to the tokens, then LN + MLP residual) followed by a
zero-initialised Dense classifier, i.e. exactly the head of a big_vision ViT with
`pool_type='map'` (parameter names 'MAPHead_0' and 'head').  Trained with decoupled
weight decay it is the paper's "MAPwd".  `pool='gap'` swaps the attention pooling for a
token mean (a linear classifier on average-pooled features).

Inputs are feature maps (B, H, W, C) or token sequences (B, N, C) (patch dropout).
"""

from __future__ import annotations

from typing import Any, Optional

import flax.linen as nn
import jax.numpy as jnp

from jaxvision.nn import vit


class MAPClassifier(nn.Module):
  num_classes: int
  num_heads: int = 8
  mlp_dim: Optional[int] = None      # default 4x the feature width
  pool: str = 'map'                  # 'map' | 'gap'
  head_zeroinit: bool = True
  dtype_mm: Any = 'float32'

  @nn.compact
  def __call__(self, features, *, train: bool = False):
    if features.ndim == 4:
      b, h, w, c = features.shape
      features = jnp.reshape(features, (b, h * w, c))
    if features.ndim != 3:
      raise ValueError(f'expected features (B, H, W, C) or tokens (B, N, C), got shape '
                       f'{features.shape}')
    x = features.astype(jnp.float32)
    if self.pool == 'map':
      x = vit.MAPHead(self.mlp_dim, self.num_heads, dtype_mm=self.dtype_mm,
                      name='MAPHead_0')(x, train=train)
    elif self.pool == 'gap':
      x = jnp.mean(x, axis=1)
    else:
      raise ValueError(f"unknown pool {self.pool!r}; valid: 'map', 'gap'")
    init = nn.initializers.zeros if self.head_zeroinit else nn.initializers.lecun_normal()
    return nn.Dense(self.num_classes, dtype=self.dtype_mm, name='head',
                    kernel_init=nn.with_logical_partitioning(init, ('embed', 'classes')),
                    bias_init=nn.with_logical_partitioning(nn.initializers.zeros,
                                                           ('classes',)))(x)
