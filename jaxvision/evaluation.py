"""What evaluators get from the trainer, and sharded batched inference over a dataset.

An evaluator is any object with `name`, `every` (steps; 0 = only at the end) and
`run(params) -> dict[str, float]`.  Projects build them in `make_evaluators(config,
ctx)`; `ctx` (an `EvalContext`) carries the model, mesh and shardings so evaluators
jit their inference exactly like the train step.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Iterable

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax.sharding import Mesh
import numpy as np

from jaxvision import sharding as sharding_lib
from jaxvision.data.pipeline import MASK_KEY


@dataclasses.dataclass
class EvalContext:
  model: nn.Module
  mesh: Mesh
  rules: Any
  param_shardings: Any
  config: Any                      # the whole (validated) run config
  workdir: str | None = None
  process_index: int = 0
  process_count: int = 1


def sum_over_dataset(ctx: EvalContext, batches: Iterable[dict[str, np.ndarray]],
                     per_example_fn: Callable[[Any, dict[str, jax.Array]], dict[str, jax.Array]],
                     params: Any) -> dict[str, float]:
  """Sums `per_example_fn(params, batch)` (each value shaped (batch,)) over valid examples.

  Padding examples (`_mask == 0`) are excluded; returns the sums and `count`.
  """

  def step(params, batch):
    values = per_example_fn(params, batch)
    mask = batch[MASK_KEY].astype(jnp.float32)
    sums = {k: jnp.sum(v.astype(jnp.float32) * mask) for k, v in values.items()}
    sums['count'] = jnp.sum(mask)
    return sums

  jitted = None
  totals: dict[str, float] = {}
  with jax.set_mesh(ctx.mesh), nn.logical_axis_rules(ctx.rules):
    for local_batch in batches:
      batch = sharding_lib.host_batch_to_global(local_batch, ctx.mesh)
      if jitted is None:
        jitted = jax.jit(step, in_shardings=(ctx.param_shardings,
                                             {k: v.sharding for k, v in batch.items()}),
                         out_shardings=sharding_lib.replicated(ctx.mesh))
      sums = jax.device_get(jitted(params, batch))
      for k, v in sums.items():
        totals[k] = totals.get(k, 0.0) + float(v)
  return totals
