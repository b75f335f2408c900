"""Parameter trees shared by the checkpoint loaders: unboxing and shape checks."""

from __future__ import annotations

from typing import Any, Mapping

import flax.linen as nn
from flax import traverse_util
import jax
import numpy as np


def unbox(tree: Any) -> Any:
  """Replaces `nn.Partitioned` boxes by their values.

  Not `nn.meta.unbox`: that would apply sharding constraints under a global mesh.
  """
  return jax.tree.map(lambda x: x.value if isinstance(x, nn.Partitioned) else x, tree,
                      is_leaf=lambda x: isinstance(x, nn.Partitioned))


def check_shapes(abstract: Mapping[str, Any], params: Mapping[str, Any], what: str) -> None:
  """Raises ValueError naming every key/shape where `params` differ from `abstract`.

  `abstract` is the model's parameter tree (arrays or ShapeDtypeStructs, boxed or not).
  """
  want = {'/'.join(k): tuple(v.shape)
          for k, v in traverse_util.flatten_dict(unbox(abstract)).items()}
  got = {'/'.join(k): tuple(np.shape(v)) for k, v in traverse_util.flatten_dict(params).items()}
  problems = [f'missing {k}' for k in sorted(set(want) - set(got))]
  problems += [f'unexpected {k}' for k in sorted(set(got) - set(want))]
  problems += [f'{k}: {got[k]} vs model {want[k]}' for k in sorted(set(want) & set(got))
               if want[k] != got[k]]
  if problems:
    raise ValueError(f'{what} params do not fit the model: ' + '; '.join(problems))


def target_sharding(target: Any) -> jax.sharding.Sharding | None:
  """The sharding a loaded leaf must get: that of a placed array or a
  `jax.ShapeDtypeStruct(..., sharding=...)` target; None for host/plain targets."""
  if isinstance(target, nn.Partitioned):
    target = target.value
  sharding = getattr(target, 'sharding', None)
  return sharding if isinstance(sharding, jax.sharding.Sharding) else None


def place(value: Any, target: Any) -> Any:
  """`value` (a host array, or an already placed `jax.Array`) with `target`'s sharding
  and dtype; unchanged when `target` carries no sharding.

  Each device's shard is sliced out of `value` by `jax.make_array_from_callback`: a
  process only transfers the shards of its addressable devices, so a model sharded
  over a pod is placed leaf by leaf without ever being gathered on one host.
  """
  sharding = target_sharding(target)
  if sharding is None:
    return value
  dtype = np.dtype(target.dtype)
  if isinstance(value, jax.Array):
    if value.sharding == sharding and value.dtype == dtype:
      return value
    return jax.device_put(value.astype(dtype), sharding)
  host = np.asarray(value, dtype=dtype)
  if host.shape != tuple(target.shape):
    raise ValueError(f'cannot place an array of shape {host.shape} on a target of shape '
                     f'{tuple(target.shape)}')
  return jax.make_array_from_callback(host.shape, sharding, lambda index: host[index])


def place_like(values: Any, targets: Any) -> Any:
  """`place` over two trees of the same structure (targets boxed or not)."""
  return jax.tree.map(place, values, unbox(targets))
