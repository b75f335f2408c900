"""Checkpoints: orbax CheckpointManager over the train state and the data iterator.

A checkpoint holds two items: `state` (params, optimizer state, step, rng key data) and
`data` (each process's grain iterator state).  Saves are atomic (orbax writes a
temporary folder and renames it when complete), so a process killed mid-save leaves the
previous checkpoints intact.  If the latest checkpoint is unreadable anyway (a disk
fault, a partial copy), `restore_latest` reports it and falls back to the one before.
"""

from __future__ import annotations

import os
from typing import Any

from absl import logging
import grain
import jax
import numpy as np
import orbax.checkpoint as ocp
from orbax.checkpoint import checkpoint_managers as policies


class Checkpointer:
  """Saves every `every` steps (and on demand), keeps the newest `keep`."""

  def __init__(self, directory: str, *, every: int, keep: int, asynchronous: bool = True):
    self.directory = os.path.abspath(directory)
    save_policy = (policies.FixedIntervalPolicy(every) if every and every > 0
                   else policies.SpecificStepsPolicy(()))
    options = ocp.CheckpointManagerOptions(
        save_decision_policy=save_policy,
        preservation_policy=policies.LatestN(keep) if keep and keep > 0 else None,
        enable_async_checkpointing=asynchronous,
        cleanup_tmp_directories=True,
    )
    self._manager = ocp.CheckpointManager(self.directory, options=options)

  def all_steps(self) -> list[int]:
    self._manager.reload()
    return sorted(self._manager.all_steps())

  def latest_step(self) -> int | None:
    steps = self.all_steps()
    return steps[-1] if steps else None

  def should_save(self, step: int) -> bool:
    return self._manager.should_save(step)

  def save(self, step: int, state: Any, data_iterator: Any = None, *, force: bool = False) -> bool:
    """Saves if the policy says so (or `force`); returns whether a save started."""
    items = {'state': ocp.args.StandardSave(state)}
    if data_iterator is not None:
      items['data'] = grain.checkpoint.CheckpointSave(data_iterator)
    return self._manager.save(step, args=ocp.args.Composite(**items), force=force)

  def restore(self, step: int, abstract_state: Any, data_iterator: Any = None) -> Any:
    items = {'state': ocp.args.StandardRestore(abstract_state)}
    if data_iterator is not None:
      items['data'] = grain.checkpoint.CheckpointRestore(data_iterator)
    restored = self._manager.restore(step, args=ocp.args.Composite(**items))
    return restored['state']

  def restore_latest(self, abstract_state: Any, data_iterator: Any = None
                     ) -> tuple[Any, int] | None:
    """Restores the newest readable checkpoint, or returns None if there is none.

    An unreadable checkpoint is logged with its error and skipped for the previous one.
    The data iterator is restored in place.
    """
    for step in reversed(self.all_steps()):
      try:
        state = self.restore(step, abstract_state, data_iterator)
      except Exception as e:  # pylint: disable=broad-except
        logging.error('checkpoint at step %d in %s is unreadable (%s: %s); trying the previous '
                      'one', step, self.directory, type(e).__name__, e)
        continue
      return state, step
    return None

  def wait(self) -> None:
    self._manager.wait_until_finished()

  def close(self) -> None:
    self._manager.wait_until_finished()
    self._manager.close()


def load_params(workdir: str, step: int | None = None) -> Any:
  """The parameters of a jaxvision run's checkpoint (latest by default), as numpy arrays.

  Used to start from another run's weights (e.g. a frozen backbone).  Reads only the
  `params` of the `state` item; no model or optimizer is needed.
  """
  directory = os.path.join(workdir, 'checkpoints') if os.path.isdir(
      os.path.join(workdir, 'checkpoints')) else workdir
  if not os.path.isdir(directory):
    raise FileNotFoundError(f'no checkpoint folder at {directory!r}')
  with ocp.CheckpointManager(directory, options=ocp.CheckpointManagerOptions(read_only=True)) as m:
    steps = sorted(m.all_steps())
    if not steps:
      raise FileNotFoundError(f'no checkpoints in {directory!r}')
    step = steps[-1] if step is None else step
    path = os.path.join(directory, str(step), 'state')
  with ocp.PyTreeCheckpointer() as ckptr:
    meta = ckptr.metadata(path).item_metadata
    if 'params' not in meta:
      raise KeyError(f'checkpoint {path!r} holds no params (keys: {sorted(meta)})')
    # Restore host numpy arrays, whatever devices wrote them.
    restore_args = jax.tree.map(lambda _: ocp.RestoreArgs(restore_type=np.ndarray), meta)
    restored = ckptr.restore(path, args=ocp.args.PyTreeRestore(restore_args=restore_args))
  if 'params' not in restored:
    raise KeyError(f'checkpoint {path!r} holds no params (keys: {sorted(restored)})')
  return restored['params']
