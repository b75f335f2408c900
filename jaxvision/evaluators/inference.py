"""The one way evaluators run a model: batched, sharded inference over a dataset.

Every evaluator (the shared ones in this package and the paper-specific ones of a
project) runs its prediction function through `Inference`: the function is jitted
once with the parameter shardings of the train step and the batch split over the
data-parallel mesh axes, traced under the mesh and the logical-axis rules, and its
outputs come back replicated (gathered) to the host.  Batches come from
`dataset_batches` (or any iterator of the same form): each process reads its own
shard, the last partial batch is padded to the fixed batch size with copies marked
`_mask == 0` (so the jitted step never recompiles) and every example carries its
`_index` in the dataset, so predictions come back in dataset order on every process.

Two ways to consume the outputs:
  `predict`     the per-example outputs of the valid examples, concatenated, on host;
  `accumulate`  a per-batch reduction inside the jitted step (masked sums, confusion
                matrices, histograms), summed over batches on host: nothing
                per-example leaves the devices.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Iterable, Iterator, Mapping

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax.sharding import Mesh
import numpy as np

from jaxvision import sharding as sharding_lib
from jaxvision.data import pipeline
from jaxvision.data.pipeline import MASK_KEY

INDEX_KEY = '_index'

Batch = Mapping[str, Any]
PredictFn = Callable[..., Mapping[str, jax.Array]]   # (params, batch, *args) -> outputs


@dataclasses.dataclass
class EvalContext:
  """What the trainer hands to evaluators."""
  model: nn.Module
  mesh: Mesh
  rules: Any
  param_shardings: Any
  config: Any                      # the whole (validated) run config
  workdir: str | None = None
  process_index: int = 0
  process_count: int = 1
  # split -> (random-access source, per-example preprocess or None): the project's
  # `eval_data(config, split)`, bound to the run config by `make_evaluators`.
  data: Callable[[str], tuple[Any, Any]] | None = None


class _Indexed:
  """A source whose examples also carry their position (`_index`)."""

  def __init__(self, source, preprocess):
    self._source, self._preprocess = source, preprocess

  def __len__(self):
    return len(self._source)

  def __getitem__(self, i):
    ex = self._source[i]
    if self._preprocess is not None:
      ex = self._preprocess(ex)
    ex = dict(ex)
    ex[INDEX_KEY] = np.asarray(i, np.int32)
    return ex


def dataset_batches(ctx: EvalContext, source, *, batch_size: int, preprocess=None,
                    num_workers: int = 0) -> Iterator[dict[str, np.ndarray]]:
  """One ordered, padded, masked pass over this process's shard of `source`."""
  dp = sharding_lib.data_parallel_size(ctx.mesh)
  if batch_size <= 0 or batch_size % dp:
    raise ValueError(f'evaluation batch size {batch_size} must be a positive multiple of the '
                     f'data-parallel mesh size {dp}')
  if len(source) == 0:
    raise ValueError('evaluation dataset is empty')
  return iter(pipeline.eval_dataset(
      _Indexed(source, preprocess), global_batch_size=batch_size, num_workers=num_workers,
      process_index=ctx.process_index, process_count=ctx.process_count))


def split_batches(ctx: EvalContext, split: str, batch_size: int):
  """`dataset_batches` over the project's evaluation data for `split` (ctx.data).

  Preprocessing runs in `config.input.num_workers` worker processes, as in training.
  """
  if ctx.data is None:
    raise ValueError(f"this project provides no eval_data(config, split), so evaluators "
                     f"cannot read split {split!r}")
  source, preprocess = ctx.data(split)
  input_cfg = getattr(ctx.config, 'input', None) or {}
  return dataset_batches(ctx, source, batch_size=batch_size, preprocess=preprocess,
                         num_workers=int(input_cfg.get('num_workers', 0)))


def masked_sums(outputs: Mapping[str, jax.Array], batch: Batch, mask: jax.Array
                ) -> dict[str, jax.Array]:
  """The reduction of `sum_over_dataset`: per-example values (B,) summed over valid rows."""
  del batch
  sums = {k: jnp.sum(v.astype(jnp.float32) * mask.astype(jnp.float32))
          for k, v in outputs.items()}
  sums['count'] = jnp.sum(mask.astype(jnp.float32))
  return sums


def batch_totals(outputs: Mapping[str, jax.Array], batch: Batch, mask: jax.Array
                 ) -> dict[str, jax.Array]:
  """The reduction for functions that already return per-batch totals (using `_mask`)."""
  del batch, mask
  return dict(outputs)


class Inference:
  """`fn(params, batch, *args) -> {name: array}` run over batches, sharded.

  `args` are replicated extras (an rng, a step); batch arrays have a leading batch
  dimension split over the data-parallel axes.  `keep` names batch fields returned
  with the outputs by `predict` (e.g. labels).  One compilation per batch structure.
  """

  def __init__(self, ctx: EvalContext, fn: PredictFn, *, keep: Iterable[str] = ()):
    self.ctx, self.fn, self.keep = ctx, fn, tuple(keep)
    self._jitted: dict[Any, Callable] = {}

  def _compile(self, mode, reduce, batch, args):
    key = (mode, reduce, tuple(sorted((k, v.ndim) for k, v in batch.items())), len(args))
    if key not in self._jitted:
      keep = self.keep

      def step(params, batch, *args):
        outputs = dict(self.fn(params, batch, *args))
        mask = batch[MASK_KEY]
        if mode == 'reduce':
          return dict(reduce(outputs, batch, mask))
        for k in keep + (INDEX_KEY,):
          if k in batch:
            outputs.setdefault(k, batch[k])
        outputs[MASK_KEY] = mask
        return outputs

      ctx = self.ctx
      rep = sharding_lib.replicated(ctx.mesh)
      in_shardings = (ctx.param_shardings,
                      {k: sharding_lib.batch_sharding(ctx.mesh, v.ndim) for k, v in batch.items()},
                      *([rep] * len(args)))
      self._jitted[key] = jax.jit(step, in_shardings=in_shardings, out_shardings=rep)
    return self._jitted[key]

  def _run(self, mode, reduce, params, batches, args):
    ctx = self.ctx
    with jax.set_mesh(ctx.mesh), nn.logical_axis_rules(ctx.rules):
      for local_batch in batches:
        if MASK_KEY not in local_batch:
          raise ValueError(f"evaluation batch lacks the '{MASK_KEY}' field; build batches "
                           'with evaluators.inference.dataset_batches')
        batch = sharding_lib.host_batch_to_global(local_batch, ctx.mesh)
        jitted = self._compile(mode, reduce, batch, args)
        yield jax.device_get(jitted(params, batch, *args))

  def iterate(self, params, batches: Iterable[Batch], *args) -> Iterator[dict[str, np.ndarray]]:
    """Per batch: the outputs (and `keep` fields) of its valid examples only."""
    for out in self._run('predict', None, params, batches, args):
      valid = np.asarray(out.pop(MASK_KEY), bool)
      yield {k: np.asarray(v)[valid] for k, v in out.items()}

  def predict(self, params, batches: Iterable[Batch], *args) -> dict[str, np.ndarray]:
    """All valid examples' outputs, concatenated in dataset order (by `_index`)."""
    parts = list(self.iterate(params, batches, *args))
    if not parts:
      raise ValueError('evaluation produced no batches')
    out = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    if INDEX_KEY in out:
      order = np.argsort(out.pop(INDEX_KEY), kind='stable')
      out = {k: v[order] for k, v in out.items()}
    return out

  def accumulate(self, params, batches: Iterable[Batch], reduce=masked_sums, *args
                 ) -> dict[str, np.ndarray]:
    """Sum over batches of `reduce(outputs, batch, mask)`, computed inside the step.

    `reduce` must be a module-level function (it keys the compilation cache).  Float
    results are summed in float64 on host, integer ones in int64.
    """
    totals: dict[str, np.ndarray] = {}
    for part in self._run('reduce', reduce, params, batches, args):
      for k, v in part.items():
        v = np.asarray(v)
        v = v.astype(np.int64 if np.issubdtype(v.dtype, np.integer) else np.float64)
        totals[k] = totals[k] + v if k in totals else v
    if not totals:
      raise ValueError('evaluation produced no batches')
    return totals


def sum_over_dataset(ctx: EvalContext, batches: Iterable[Batch], per_example_fn: PredictFn,
                     params: Any) -> dict[str, float]:
  """Sums `per_example_fn(params, batch)` (each value (batch,)) over valid examples."""
  totals = Inference(ctx, per_example_fn).accumulate(params, batches, masked_sums)
  return {k: float(v) for k, v in totals.items()}
