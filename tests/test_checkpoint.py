"""Checkpointer: keep-N, restore of state + data iterator, params-only loading."""

import jax
import jax.numpy as jnp
import numpy as np

from jaxvision import checkpoint
from jaxvision.data import pipeline
from jaxvision.data import sources


def _state(v):
  return {'step': jnp.asarray(v, jnp.int32), 'params': {'w': jnp.full((3, 2), float(v))},
          'opt_state': (jnp.zeros(()),), 'rng': jax.random.key_data(jax.random.key(v))}


def test_keep_n_and_restore_with_iterator(tmp_path):
  src = sources.ArraySource({'x': np.arange(50)})
  it = iter(pipeline.train_dataset(src, global_batch_size=5, seed=0, process_index=0,
                                   process_count=1))
  ck = checkpoint.Checkpointer(str(tmp_path), every=2, keep=2, asynchronous=False)
  for step in range(1, 7):
    next(it)
    if ck.should_save(step):
      ck.save(step, _state(step), it)
  ck.wait()
  assert ck.all_steps() == [4, 6]
  expected_next = next(it)['x']

  fresh = iter(pipeline.train_dataset(src, global_batch_size=5, seed=0, process_index=0,
                                      process_count=1))
  abstract = jax.eval_shape(lambda: _state(0))
  state, step = ck.restore_latest(abstract, fresh)
  assert step == 6 and int(state['step']) == 6
  np.testing.assert_array_equal(state['params']['w'], np.full((3, 2), 6.0))
  np.testing.assert_array_equal(next(fresh)['x'], expected_next)
  ck.close()
  params = checkpoint.load_params(str(tmp_path))
  np.testing.assert_array_equal(params['w'], np.full((3, 2), 6.0))
  np.testing.assert_array_equal(checkpoint.load_params(str(tmp_path), step=4)['w'],
                                np.full((3, 2), 4.0))


def test_load_params_errors(tmp_path):
  import pytest
  with pytest.raises(FileNotFoundError, match='no checkpoint folder'):
    checkpoint.load_params(str(tmp_path / 'nope'))


# ------------------------------------------------------------- damaged checkpoints (issue 10)
import logging as _logging  # noqa: E402
import os  # noqa: E402

import pytest  # noqa: E402


def _saved(tmp_path, steps=(2, 4), keep=3):
  ck = checkpoint.Checkpointer(str(tmp_path), every=2, keep=keep, asynchronous=False)
  for s in steps:
    ck.save(s, _state(s), force=True)
  ck.wait()
  return ck


def _array_files(directory):
  """The OCDBT data files (b-tree nodes and array bytes) of one step's `state`."""
  out = [os.path.join(r, f) for r, _, fs in os.walk(os.path.join(directory, 'state'))
         for f in fs if os.path.basename(r) == 'd']
  assert out, directory
  return out


def test_random_bytes_in_array_data_are_detected_and_moved_aside(tmp_path, caplog):
  """Bytes changed inside an array's stored data (which zstd keeps raw: float noise does
  not compress) decode fine; only the checksum written at save time can tell."""
  caplog.set_level(_logging.INFO)
  # Full-entropy finite floats (exponent's top bit cleared): incompressible, so stored raw.
  weights = {s: (np.random.default_rng(s).integers(0, 2**32, (64, 64), dtype=np.uint32)
                 & np.uint32(0xBFFFFFFF)).view(np.float32) for s in (2, 4)}
  ck = checkpoint.Checkpointer(str(tmp_path), every=2, keep=3, asynchronous=False)
  for s in (2, 4):
    ck.save(s, dict(_state(s), params={'w': jnp.asarray(weights[s])}), force=True)
  ck.wait()
  needle = weights[4].tobytes()[4096:4096 + 64]
  hits = 0
  for path in _array_files(os.path.join(ck.directory, '4')):
    with open(path, 'r+b') as f:
      data = f.read()
      at = data.find(needle)
      if at >= 0:
        f.seek(at)
        f.write(np.random.default_rng(1).integers(0, 256, 64, dtype=np.uint8).tobytes())
        hits += 1
  assert hits == 1   # the array's bytes were found and changed on disk
  abstract = jax.eval_shape(lambda: dict(_state(0), params={'w': jnp.zeros((64, 64))}))
  state, step = ck.restore_latest(abstract)
  assert step == 2
  np.testing.assert_array_equal(state['params']['w'], weights[2])
  assert "array 'params/w'" in caplog.text and 'checksum' in caplog.text
  assert os.path.isdir(os.path.join(ck.directory, '4.corrupt'))
  assert 'moved the unreadable checkpoint of step 4 aside' in caplog.text
  assert ck.all_steps() == [2]
  ck.close()


def test_retention_keeps_the_good_checkpoint_after_a_bad_one(tmp_path):
  """Bad step 4 moved aside: its re-save happens and keep-2 drops nothing good."""
  ck = _saved(tmp_path, keep=2)
  for f in _array_files(os.path.join(ck.directory, '4')):
    with open(f, 'wb') as fh:
      fh.write(b'garbage')
  abstract = jax.eval_shape(lambda: _state(0))
  assert ck.restore_latest(abstract)[1] == 2
  ck.save(4, _state(4), force=True)     # the run continues from 2 and saves 4 again
  ck.wait()
  assert ck.all_steps() == [2, 4]
  np.testing.assert_array_equal(ck.restore(4, abstract)['params']['w'], np.full((3, 2), 4.0))
  ck.close()


def test_all_checkpoints_unreadable_is_an_error_and_leaves_the_iterator(tmp_path):
  src = sources.ArraySource({'x': np.arange(50)})
  make = lambda: iter(pipeline.train_dataset(src, global_batch_size=5, seed=0,
                                              process_index=0, process_count=1))
  ck = checkpoint.Checkpointer(str(tmp_path), every=2, keep=3, asynchronous=False)
  it = make()
  for step in (1, 2):
    next(it)
  ck.save(2, _state(2), it, force=True)
  ck.wait()
  for f in _array_files(os.path.join(ck.directory, '2')):
    with open(f, 'wb') as fh:
      fh.write(b'garbage')
  fresh = make()
  with pytest.raises(checkpoint.CheckpointError, match=r'none of the 1 checkpoints in .* is '
                     r'readable.*step 2'):
    ck.restore_latest(jax.eval_shape(lambda: _state(0)), fresh)
  np.testing.assert_array_equal(next(fresh)['x'], next(make())['x'])   # not moved
  assert ck.all_steps() == [2]                                          # nothing moved
  ck.close()


def test_other_shapes_are_a_config_mismatch_naming_the_array(tmp_path):
  ck = _saved(tmp_path)
  wider = jax.eval_shape(lambda: dict(_state(0), params={'w': jnp.zeros((5, 2))}))
  with pytest.raises(checkpoint.ConfigMismatchError,
                     match=r"config mismatch.*'params/w' has shape \(3, 2\) float32 in the "
                     r'checkpoint but \(5, 2\) float32 in the config'):
    ck.restore_latest(wider)
  assert ck.all_steps() == [2, 4]   # a mismatch moves nothing aside
  ck.close()


def test_failed_asynchronous_save_is_one_line_with_path_and_cause(tmp_path, monkeypatch):
  from orbax.checkpoint._src.checkpointers import async_checkpointer
  import errno

  def disk_full(*args, **kwargs):
    raise OSError(errno.ENOSPC, 'No space left on device')

  monkeypatch.setattr(async_checkpointer, '_on_commit_callback', disk_full)
  ck = checkpoint.Checkpointer(str(tmp_path), every=2, keep=3, asynchronous=True)
  ck.save(2, _state(2), force=True)
  with pytest.raises(checkpoint.CheckpointError) as err:
    ck.wait()
  msg = str(err.value)
  assert '\n' not in msg
  assert os.path.join(str(tmp_path), '2') in msg and 'No space left on device' in msg
  monkeypatch.undo()
  ck._manager.close()
