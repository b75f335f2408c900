"""Multi-stage pipelines: a fresh run starts from sub-trees of an earlier run's checkpoint.

Pre-train -> fine-tune, warm-up -> joint training, a teacher from a finished run: stage
two is its own config whose `init.from_workdir` points at stage one's workdir, and
`init.restore` lists regexes on '/'-joined state paths ('params/backbone/.*',
'batch_stats/.*', 'ema/.*') naming what is taken from it.  Everything else keeps its
fresh initialisation (a new head, a fresh optimizer).

Leaves are read by orbax straight into the target `NamedSharding` of this run (partial
restore with per-leaf `ArrayRestoreArgs`): each device reads its own shard, and no full
host copy of the parameters exists at any point, so a model larger than one host's
memory loads onto a pod.  Shapes must agree; a mismatch names the leaf and both shapes.
"""

from __future__ import annotations

import os
from typing import Any, Sequence

from absl import logging
import jax
import orbax.checkpoint as ocp

from jaxvision import train_state


def _checkpoint_path(workdir: str, step: int) -> tuple[str, int]:
  directory = os.path.join(workdir, 'checkpoints')
  if not os.path.isdir(directory):
    raise FileNotFoundError(f'config.init.from_workdir={workdir!r}: no checkpoints folder '
                            f'at {directory!r} (is it the workdir of a finished run?)')
  steps = sorted(int(d) for d in os.listdir(directory) if d.isdigit())
  if not steps:
    raise FileNotFoundError(f'config.init.from_workdir={workdir!r}: no checkpoint in '
                            f'{directory!r}')
  if step < 0:
    step = steps[-1]
  elif step not in steps:
    raise FileNotFoundError(f'config.init.from_step={step}: {directory!r} has steps {steps}')
  return os.path.join(directory, str(step), 'state'), step


def _metadata_shapes(meta: Any) -> dict[str, tuple[int, ...]]:
  out = {}
  for path, leaf in jax.tree_util.tree_leaves_with_path(meta):
    shape = getattr(leaf, 'shape', None)
    if shape is not None:
      out[train_state.path_name(path)] = tuple(shape)
  return out


def restore_subtrees(state: dict, workdir: str, restore: Sequence[str], step: int = -1
                     ) -> tuple[dict, int, list[str]]:
  """`state` with the leaves matched by `restore` read from `workdir`'s checkpoint.

  `state` is this run's fresh (sharded) state; the restored leaves get the shardings
  and dtypes of the leaves they replace.  Returns (state, source step, restored names).
  """
  path, step = _checkpoint_path(workdir, step)
  target = train_state.select(state, list(restore), 'config.init.restore regex')
  with ocp.PyTreeCheckpointer() as ckptr:
    source_shapes = _metadata_shapes(ckptr.metadata(path).item_metadata)
    names = []
    for p, leaf in jax.tree_util.tree_leaves_with_path(target):
      name = train_state.path_name(p)
      names.append(name)
      if name not in source_shapes:
        raise KeyError(f'config.init.restore: {name!r} is not in the checkpoint {path!r} '
                       f'(it has e.g. {sorted(source_shapes)[:10]})')
      if source_shapes[name] != tuple(leaf.shape):
        raise ValueError(f'config.init.restore: {name!r} has shape {source_shapes[name]} in '
                         f'{path!r} but {tuple(leaf.shape)} in this run')
    item = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=x.sharding),
                        target)
    restore_args = jax.tree.map(
        lambda x: ocp.ArrayRestoreArgs(sharding=x.sharding, global_shape=x.shape,
                                       dtype=x.dtype), target)
    restored = ckptr.restore(path, args=ocp.args.PyTreeRestore(
        item=item, restore_args=restore_args, partial_restore=True))
  logging.info('initialised %d leaves (%s) from step %d of %s', len(names),
               ', '.join(restore), step, workdir)
  return train_state.merge(state, restored), step, names
