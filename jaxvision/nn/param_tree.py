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
