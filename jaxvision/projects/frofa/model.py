"""FroFA's lightweight heads on frozen feature maps (Sec. 3, "lightweight model").

`MAPClassifier`: multi-head attention pooling (`jaxvision.nn.vit.MAPHead`, big_vision's
MAPHead: a learned probe attends to the tokens, then LN + MLP residual) followed by a
zero-initialised Dense classifier, i.e. exactly the head of a big_vision ViT with
`pool_type='map'` (parameter names 'MAPHead_0' and 'head').  Trained with decoupled
weight decay it is the paper's "MAPwd".  `pool='gap'` swaps the attention pooling for a
token mean (a linear classifier on average-pooled features).

Inputs are feature maps (B, H, W, C) or token sequences (B, N, C) (patch dropout).
`ReplicatedClassifier` holds R independent heads (one per few-shot seed) vmapped over
their parameters, so that a seed sweep is one run of the binary.
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
  def __call__(self, features, *, train: bool = False, prelogits: bool = False):
    """Logits (B, num_classes), or with `prelogits=True` the classifier's input (B, D)
    (the MAP output, big_vision's pre-logits), which still creates the classifier's
    params."""
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
    logits = nn.Dense(self.num_classes, dtype=self.dtype_mm, name='head',
                    kernel_init=nn.with_logical_partitioning(init, ('embed', 'classes')),
                    bias_init=nn.with_logical_partitioning(nn.initializers.zeros,
                                                           ('classes',)))(x)
    return x if prelogits else logits


class _Replica(MAPClassifier):
  """A MAPClassifier whose call modes are attributes (`nn.vmap` drops keyword args)."""
  mode_train: bool = False
  mode_prelogits: bool = False

  def __call__(self, features):  # pylint: disable=arguments-differ
    return super().__call__(features, train=self.mode_train, prelogits=self.mode_prelogits)


class _ScanReplica(_Replica):
  """The same head as a body of `nn.scan` (carry passed through)."""

  def __call__(self, carry, features):  # pylint: disable=arguments-differ
    return carry, _Replica.__call__(self, features)


IMPLS = ('scan', 'vmap')


class ReplicatedClassifier(nn.Module):
  """`num_replicas` independent `MAPClassifier`s in one module (params stacked on axis 0).

  The few-shot protocol trains one head per few-shot seed; replicated, all seeds train
  as one run of the binary.  Every parameter gains a leading axis of size
  `num_replicas` (logical name 'replicas', replicated unless a sharding rule maps it)
  and each replica is initialised from its own key.  Inputs: (B, R, ...) with replica
  r's examples at [:, r] (`shared=False`, training), or (B, ...) seen by every replica
  (`shared=True`, evaluation).  Outputs: logits (B, R, num_classes).

  `impl`: 'vmap' (`nn.vmap`: batched matmuls) or 'scan' (`nn.scan`: one replica after
  the other, plain matmuls; lower peak memory).  Both give the same function and
  parameter layout.  On XLA's CPU backend a vmapped step of R heads costs ~10x, not R x,
  one head's step (batched matmuls are slow there); on accelerators it is one kernel.
  """
  num_replicas: int
  head: dict
  impl: str = 'vmap'

  @nn.compact
  def __call__(self, features, *, train: bool = False, shared: bool = False,
               prelogits: bool = False):
    if not shared and (features.ndim < 3 or features.shape[1] != self.num_replicas):
      raise ValueError(f'replicated features must be (B, R={self.num_replicas}, ...), got '
                       f'shape {features.shape}')
    if self.impl not in IMPLS:
      raise ValueError(f'unknown replica impl {self.impl!r}; valid: {IMPLS}')
    if not shared:   # replica-major inside
      features = jnp.moveaxis(features, 1, 0)
    common = dict(variable_axes={'params': 0}, split_rngs={'params': True, 'dropout': True},
                  metadata_params={nn.PARTITION_NAME: 'replicas'})
    kw = dict(name='replicas', mode_train=train, mode_prelogits=prelogits, **self.head)
    if self.impl == 'vmap':
      heads = nn.vmap(_Replica, in_axes=None if shared else 0, out_axes=0,
                      axis_size=self.num_replicas, **common)
      out = heads(**kw)(features)
    else:
      heads = nn.scan(_ScanReplica, in_axes=nn.broadcast if shared else 0, out_axes=0,
                      length=self.num_replicas, **common)
      _, out = heads(**kw)(None, features)
    return jnp.moveaxis(out, 0, 1)
