"""grain input pipelines: seeded, deterministic, sharded per process, checkpointable.

Training: shuffle the whole source (reshuffled every epoch) -> repeat -> per-example
preprocessing with its own seeded numpy Generator (keyed by the example's position in
that global stream) -> chunks of the per-process batch size -> process p takes chunks
p, p + P, p + 2P, ...  So global batch t is positions [tB, (t+1)B) of one global stream
whatever the number of processes P: each process reads (and augments) only its own
B/P examples of it, together they read every epoch exactly once, and a run on P
processes computes what a run on one process computes (the MaxText/grain way: shard
after a global shuffle, not shuffle after sharding).  The iterator's state
(`get_state`) is one small dict, the number of batches taken, which is the same on
every process, so a checkpoint resumes exactly on this or another process count.

Evaluation: shard by process -> one pass in order -> pad the last batch to the fixed
batch size with copies marked `_mask == 0`, so every example counts exactly once and the
jitted evaluation step never recompiles.
"""

from __future__ import annotations

from typing import Any, Callable

import grain
import jax
import numpy as np

Example = dict[str, np.ndarray]
MASK_KEY = '_mask'


def _local_batch_size(global_batch_size: int, process_count: int) -> int:
  if global_batch_size % process_count:
    raise ValueError(f'batch size {global_batch_size} is not divisible by the number of '
                     f'processes {process_count}')
  return global_batch_size // process_count


def _process(process_index: int | None, process_count: int | None) -> tuple[int, int]:
  return (jax.process_index() if process_index is None else process_index,
          jax.process_count() if process_count is None else process_count)


def _maybe_prefetch(ds: grain.IterDataset, num_workers: int) -> grain.IterDataset:
  if num_workers > 0:
    return ds.mp_prefetch(grain.MultiprocessingOptions(num_workers=num_workers))
  return ds


def train_dataset(
    source: Any,
    *,
    global_batch_size: int,
    seed: int,
    preprocess: Callable[[Example, np.random.Generator], Example] | None = None,
    num_epochs: int | None = None,
    num_workers: int = 0,
    process_index: int | None = None,
    process_count: int | None = None,
) -> grain.IterDataset:
  """Infinite (or `num_epochs`) shuffled batches: this process's part of each global batch.

  Process `pi` of `pc` gets rows [pi * B/pc, (pi + 1) * B/pc) of every global batch of
  size B, which is where `jax.make_array_from_process_local_data` puts them.
  """
  pi, pc = _process(process_index, process_count)
  bs = _local_batch_size(global_batch_size, pc)
  ds = grain.MapDataset.source(source)
  if len(ds) == 0:
    raise ValueError('the training dataset is empty')
  ds = ds.shuffle(seed=seed).repeat(num_epochs)
  if preprocess is not None:
    ds = ds.random_map(preprocess, seed=seed + 1)
  # Lazy: a chunk is read only by the process that takes it.
  ds = ds.batch(bs, drop_remainder=True)[pi::pc]
  return _maybe_prefetch(ds.to_iter_dataset(), num_workers)


def eval_dataset(
    source: Any,
    *,
    global_batch_size: int,
    preprocess: Callable[[Example], Example] | None = None,
    num_workers: int = 0,
    process_index: int | None = None,
    process_count: int | None = None,
) -> grain.IterDataset:
  """One ordered pass over this process's shard, padded to whole batches with `_mask`.

  All processes yield the same number of batches (required for collective evaluation).
  """
  pi, pc = _process(process_index, process_count)
  bs = _local_batch_size(global_batch_size, pc)
  shard = grain.MapDataset.source(source)[pi::pc]
  n_total = len(grain.MapDataset.source(source))
  n_shard_max = -(-n_total // pc)
  n_padded = -(-n_shard_max // bs) * bs
  n_local = len(shard)

  def get(i):
    ex = shard[min(i, n_local - 1)] if n_local else None
    if ex is None:
      raise ValueError('empty evaluation shard')
    if preprocess is not None:
      ex = preprocess(ex)
    ex = dict(ex)
    ex[MASK_KEY] = np.asarray(i < n_local, np.bool_)
    return ex

  ds = grain.MapDataset.range(n_padded).map(get).batch(bs, drop_remainder=True)
  return _maybe_prefetch(ds.to_iter_dataset(), num_workers)
