"""Checkpoints: orbax CheckpointManager over the train state and the data iterator.

A checkpoint holds three items: `state` (params, optimizer state, step, rng key data),
`data` (each process's grain iterator state) and `checksums` (one 64-bit content hash
per state array, computed on device before the save).  Saves are atomic (orbax writes a
temporary folder and renames it when complete), so a process killed mid-save leaves the
previous checkpoints intact.

`restore_latest` walks the checkpoints newest first:
- a checkpoint whose tree or shapes differ from the config's state is a *config
  mismatch* (`ConfigMismatchError` naming the first differing array), never "unreadable";
- one that fails to read, or whose arrays do not hash to the stored checksums (bytes
  changed on disk), is unreadable: it is skipped for the one before, and once a readable
  one is found the bad ones are moved aside to `<step>.corrupt` (so that keep-N retention
  never deletes the good checkpoint in favour of a bad one);
- if checkpoints exist and none restores, it raises `CheckpointError`: a run never
  silently starts afresh over a workdir of damaged checkpoints.
The data iterator is restored only together with a state that restored.
"""

from __future__ import annotations

import contextlib
import json
import os
from typing import Any

from absl import logging
import grain
import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp
from orbax.checkpoint import checkpoint_managers as policies

CORRUPT_SUFFIX = '.corrupt'


class CheckpointError(RuntimeError):
  """A checkpoint cannot be used (unreadable, damaged, or a failed save)."""


class ConfigMismatchError(CheckpointError):
  """A checkpoint's tree or shapes differ from the state the config builds."""


# ------------------------------------------------------------------------- checksums
def _leaf_hash(x: jax.Array) -> jax.Array:
  """Two position-weighted uint32 sums of the array's bits (odd weights: any single
  changed element changes both); order-independent, so the same on any sharding."""
  if jnp.issubdtype(x.dtype, jax.dtypes.prng_key):
    x = jax.random.key_data(x)
  if x.dtype == jnp.bool_:
    u = x.astype(jnp.uint32)
  else:
    bits = {1: jnp.uint8, 2: jnp.uint16, 4: jnp.uint32, 8: jnp.uint32}[x.dtype.itemsize]
    u = jax.lax.bitcast_convert_type(x, bits).astype(jnp.uint32)
  u = u.ravel()
  i = jnp.arange(u.size, dtype=jnp.uint32)
  w1 = (i * jnp.uint32(0x9E3779B1)) | jnp.uint32(1)
  w2 = (i * jnp.uint32(0x85EBCA77) + jnp.uint32(0x27D4EB2F)) | jnp.uint32(1)
  return jnp.stack([jnp.sum(u * w1, dtype=jnp.uint32),
                    jnp.sum((u ^ (u >> 15)) * w2, dtype=jnp.uint32)])


_hash_tree = jax.jit(lambda tree: jax.tree.map(_leaf_hash, tree))


def _key_name(k: Any) -> str:
  for attr in ('key', 'name', 'idx'):
    if hasattr(k, attr):
      return str(getattr(k, attr))
  return str(k)


def _flat(tree: Any) -> dict[str, Any]:
  """{'params/head/kernel': leaf}: one naming for a state tree and orbax's metadata tree
  (which stores namedtuples as dicts and tuples as lists)."""
  leaves = jax.tree_util.tree_flatten_with_path(tree)[0]
  return {'/'.join(_key_name(k) for k in path): leaf for path, leaf in leaves}


def checksums(state: Any) -> dict[str, str]:
  """{array path: 16 hex digits} of a (sharded) state tree."""
  hashes = jax.device_get(_hash_tree(state))
  return {k: '%08x%08x' % tuple(int(v) for v in h) for k, h in _flat(hashes).items()}


def _params_first(names):
  return sorted(names, key=lambda n: (not n.startswith('params/'), n))


def _describe(leaf) -> str:
  return f'{tuple(leaf.shape)} {np.dtype(leaf.dtype).name}'


def compare_structure(stored: Any, abstract: Any) -> str | None:
  """None if the two trees have the same arrays with the same shapes and dtypes; else
  a sentence naming the first differing array (parameters first)."""
  s, a = _flat(stored), _flat(abstract)
  for name in _params_first(set(s) | set(a)):
    if name not in s:
      return f"array '{name}' {_describe(a[name])} of the config is not in the checkpoint"
    if name not in a:
      return f"array '{name}' {_describe(s[name])} of the checkpoint is not in the config"
    if tuple(s[name].shape) != tuple(a[name].shape) or (
        getattr(s[name], 'dtype', None) is not None
        and np.dtype(s[name].dtype) != np.dtype(a[name].dtype)):
      return (f"array '{name}' has shape {_describe(s[name])} in the checkpoint but "
              f'{_describe(a[name])} in the config')
  return None


def _one_line(e: BaseException) -> str:
  text = ' '.join(str(e).split())
  return f'{type(e).__name__}: {text[:300]}'


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
    if not (force or self.should_save(step)):
      return False
    self.wait()   # the previous save's outcome, by its own step (orbax waits here anyway)
    items = {'state': ocp.args.StandardSave(state),
             'checksums': ocp.args.JsonSave(checksums(state))}
    if data_iterator is not None:
      items['data'] = grain.checkpoint.CheckpointSave(data_iterator)
    with self._save_errors(step):
      started = self._manager.save(step, args=ocp.args.Composite(**items), force=force)
    return started

  @contextlib.contextmanager
  def _save_errors(self, step: int | None):
    """Turns orbax's save failure (often a long traceback) into one line: path and cause."""
    try:
      yield
    except CheckpointError:
      raise
    except Exception as e:  # pylint: disable=broad-except
      where = os.path.join(self.directory, str(step)) if step is not None else self.directory
      raise CheckpointError(f'saving the checkpoint of step {step} to {where} failed: '
                            f'{_one_line(e)}') from e

  def _finalizing(self) -> Any:
    """orbax's background thread finishing the newest save (None if none/unknown)."""
    ref = getattr(self._manager, '_finalize_thread', None)
    try:
      return ref.map(lambda t: t) if ref is not None else None
    except Exception:  # pylint: disable=broad-except
      return None

  def check(self) -> None:
    """Raises `CheckpointError` (path and cause, one line) if an asynchronous save has
    failed; does not wait for one in progress (cheap enough to call every step)."""
    thread = self._finalizing()
    with self._save_errors(thread.step() if thread is not None else None):
      self._manager.check_for_errors()
      if thread is not None and not thread.is_alive() and thread.exception is not None:
        self._manager.wait_until_finished()   # raises the thread's exception

  def restore(self, step: int, abstract_state: Any, data_iterator: Any = None) -> Any:
    """Restores and verifies one step; the iterator is touched only if the state is good.

    Raises:
      ConfigMismatchError: the checkpoint's arrays differ from `abstract_state`'s.
      CheckpointError: it cannot be read, or its arrays fail their checksums.
    """
    where = os.path.join(self.directory, str(step))
    try:
      with ocp.PyTreeCheckpointer() as reader:
        stored = reader.metadata(os.path.join(where, 'state')).item_metadata
    except Exception as e:  # pylint: disable=broad-except
      raise CheckpointError(f'cannot read the metadata of {where}: {_one_line(e)}') from e
    if stored is None or not _flat(stored):   # orbax logs the cause and returns nothing
      raise CheckpointError(f'cannot read the metadata of {where}')
    mismatch = compare_structure(stored, abstract_state)
    if mismatch:
      raise ConfigMismatchError(
          f'config mismatch: the checkpoint {where} was written by another config: '
          f'{mismatch}. Use a new --workdir for a different model, or the config of that run '
          f'(its config.json)')
    try:
      state = self._manager.restore(step, args=ocp.args.Composite(
          state=ocp.args.StandardRestore(abstract_state)))['state']
      stored_sums = self._stored_checksums(step)
    except Exception as e:  # pylint: disable=broad-except
      raise CheckpointError(f'cannot read {where}: {_one_line(e)}') from e
    if stored_sums is None:
      logging.warning('checkpoint %s has no checksums (written by an older jaxvision): its '
                      'arrays are not verified', where)
    else:
      actual = checksums(state)
      bad = [k for k in _params_first(actual) if stored_sums.get(k) != actual[k]]
      if bad:
        raise CheckpointError(
            f"checkpoint {where} is damaged: array '{bad[0]}' (and {len(bad) - 1} more) does "
            f'not match the checksum stored at save time')
    if data_iterator is not None:
      before = data_iterator.get_state()
      try:
        if not self._restore_data_other_count(step, data_iterator):
          self._manager.restore(step, args=ocp.args.Composite(
              data=grain.checkpoint.CheckpointRestore(data_iterator)))
      except Exception as e:  # pylint: disable=broad-except
        data_iterator.set_state(before)
        raise CheckpointError(f'cannot read the data-iterator state of {where}: '
                              f'{_one_line(e)}') from e
    return state

  def _restore_data_other_count(self, step: int, data_iterator: Any) -> bool:
    """Restores iterator state written by another number of processes; False if this
    process's own file (`process_<i>-of-<n>.json`, grain's naming) is there.

    jaxvision's training pipelines keep one global position (`pipeline.train_dataset`),
    so every process's state is the same: it is valid on any process count.  Files that
    differ (a pipeline with per-process state) are refused."""
    folder = os.path.join(self.directory, str(step), 'data')
    own = f'process_{jax.process_index()}-of-{jax.process_count()}.json'
    if not os.path.isdir(folder) or os.path.exists(os.path.join(folder, own)):
      return False
    names = sorted(n for n in os.listdir(folder) if n.startswith('process_'))
    if not names:
      return False
    texts = set()
    for n in names:
      with open(os.path.join(folder, n), encoding='utf-8') as f:
        texts.add(json.dumps(json.load(f), sort_keys=True))
    if len(texts) != 1:
      raise CheckpointError(
          f'{folder} holds per-process data-iterator states ({", ".join(names)}) that differ: '
          f'they cannot be restored on {jax.process_count()} processes')
    data_iterator.set_state(json.loads(texts.pop()))
    logging.info('data-iterator state of %s written by %d processes, restored on %d', folder,
                 len(names), jax.process_count())
    return True

  def _stored_checksums(self, step: int) -> dict[str, str] | None:
    if not os.path.isdir(os.path.join(self.directory, str(step), 'checksums')):
      return None
    return self._manager.restore(step, args=ocp.args.Composite(
        checksums=ocp.args.JsonRestore()))['checksums']

  def restore_latest(self, abstract_state: Any, data_iterator: Any = None
                     ) -> tuple[Any, int] | None:
    """Restores the newest readable checkpoint; None only if there is no checkpoint.

    Unreadable ones are logged and skipped for the previous one, then moved aside to
    `<step>.corrupt` once a good one restored.  The data iterator is restored in place,
    together with the state.

    Raises:
      ConfigMismatchError: the newest checkpoint does not fit the config's state.
      CheckpointError: checkpoints exist but none is readable (nothing is moved).
    """
    steps = self.all_steps()
    failed: list[tuple[int, str]] = []
    for step in reversed(steps):
      try:
        state = self.restore(step, abstract_state, data_iterator)
      except ConfigMismatchError:
        raise
      except CheckpointError as e:
        logging.error('%s; trying the previous checkpoint', e)
        failed.append((step, str(e)))
        continue
      for bad, _ in failed:
        self._move_aside(bad)
      return state, step
    if failed:
      raise CheckpointError(
          f'none of the {len(failed)} checkpoints in {self.directory} is readable (nothing '
          f'was moved or deleted; move the folder away to start afresh): '
          + '; '.join(f'step {s}: {e}' for s, e in failed))
    return None

  def _move_aside(self, step: int) -> None:
    src = os.path.join(self.directory, str(step))
    dst = src + CORRUPT_SUFFIX
    if jax.process_index() == 0:
      n = 1
      while os.path.exists(dst):
        dst, n = f'{src}{CORRUPT_SUFFIX}.{n}', n + 1
      os.rename(src, dst)
      logging.error('moved the unreadable checkpoint of step %d aside to %s', step, dst)
    if jax.process_count() > 1:
      from jax.experimental import multihost_utils  # pylint: disable=g-import-not-at-top
      multihost_utils.sync_global_devices(f'jaxvision_move_aside_{step}')
    self._manager.reload()

  def wait(self) -> None:
    thread = self._finalizing()
    with self._save_errors(thread.step() if thread is not None else None):
      self._manager.wait_until_finished()

  def wait_for(self, step: int) -> None:
    """Waits for the saves in flight; raises `CheckpointError` if `step` is not on disk."""
    self.wait()
    if step not in self.all_steps():
      raise CheckpointError(f'the checkpoint of step {step} is not in {self.directory} '
                            f'(steps there: {self.all_steps()})')

  def close(self) -> None:
    try:
      self.wait()
    finally:
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
