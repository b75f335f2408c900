"""grain pipelines: determinism, per-process sharding, exact resume, padded eval."""

import numpy as np
import pytest

from jaxvision.data import digits
from jaxvision.data import pipeline
from jaxvision.data import sources


def _source(n=23):
  return sources.ArraySource({'x': np.arange(n, dtype=np.int32),
                              'y': np.arange(n, dtype=np.float32) * 2})


def _aug(example, rng):
  return dict(example, noise=np.asarray(rng.integers(0, 1000), np.int32))


def test_train_pipeline_is_deterministic_and_reshuffles_epochs():
  a = iter(pipeline.train_dataset(_source(), global_batch_size=5, seed=3, preprocess=_aug,
                                  process_index=0, process_count=1))
  b = iter(pipeline.train_dataset(_source(), global_batch_size=5, seed=3, preprocess=_aug,
                                  process_index=0, process_count=1))
  batches_a = [next(a) for _ in range(12)]
  batches_b = [next(b) for _ in range(12)]
  for u, v in zip(batches_a, batches_b):
    np.testing.assert_array_equal(u['x'], v['x'])
    np.testing.assert_array_equal(u['noise'], v['noise'])
  xs = np.concatenate([u['x'] for u in batches_a])
  # The first epoch (23 examples) is a permutation of the data; the second differs.
  assert sorted(xs[:23].tolist()) == list(range(23))
  assert xs[23:46].tolist() != xs[:23].tolist()
  assert batches_a[0]['x'].shape == (5,)
  np.testing.assert_array_equal(batches_a[0]['y'], batches_a[0]['x'] * 2)


def test_processes_see_disjoint_shards():
  seen = []
  for pi in range(2):
    it = iter(pipeline.train_dataset(_source(20), global_batch_size=4, seed=0,
                                     process_index=pi, process_count=2))
    seen.append(np.concatenate([next(it)['x'] for _ in range(5)]))  # one epoch: 10 each
    assert seen[-1].shape == (10,)
  assert set(seen[0]).isdisjoint(seen[1])
  assert set(seen[0]) | set(seen[1]) == set(range(20))


def test_iterator_state_resumes_exactly():
  make = lambda: iter(pipeline.train_dataset(_source(), global_batch_size=4, seed=1,
                                             preprocess=_aug, process_index=0, process_count=1))
  it = make()
  for _ in range(7):
    next(it)
  state = it.get_state()
  expected = [next(it) for _ in range(9)]
  resumed = make()
  resumed.set_state(state)
  for e in expected:
    got = next(resumed)
    np.testing.assert_array_equal(got['x'], e['x'])
    np.testing.assert_array_equal(got['noise'], e['noise'])


@pytest.mark.parametrize('process_count', [2, 4])
def test_process_batches_assemble_the_single_process_batch(process_count):
  """Process p's batch is rows [p*b, (p+1)*b) of the 1-process global batch, augmentation
  included, over epoch boundaries and after a resume from the shared iterator state."""
  make = lambda pi, pc: iter(pipeline.train_dataset(
      _source(), global_batch_size=8, seed=5, preprocess=_aug, process_index=pi,
      process_count=pc))
  single = make(0, 1)
  glob = [next(single) for _ in range(9)]             # 72 positions: three epochs of 23
  local = [make(pi, process_count) for pi in range(process_count)]
  for t, g in enumerate(glob):
    if t == 4:   # resume each process from its own state: the states are equal
      states = [it.get_state() for it in local]
      assert all(s == states[0] for s in states)
      local = [make(pi, process_count) for pi in range(process_count)]
      for it in local:
        it.set_state(states[0])
    parts = [next(it) for it in local]
    for key in ('x', 'noise'):
      np.testing.assert_array_equal(np.concatenate([p[key] for p in parts]), g[key])


@pytest.mark.parametrize('process_count', [1, 2, 3])
def test_eval_pipeline_counts_every_example_once(process_count):
  n = 23
  counts = np.zeros(n, int)
  num_batches = set()
  for pi in range(process_count):
    batches = list(pipeline.eval_dataset(_source(n), global_batch_size=6 * process_count,
                                         process_index=pi, process_count=process_count))
    num_batches.add(len(batches))
    for b in batches:
      assert b['x'].shape == (6,)
      np.add.at(counts, b['x'][b['_mask']], 1)
  assert (counts == 1).all()
  assert len(num_batches) == 1  # every process runs the same number of steps


def test_batch_size_must_divide_over_processes():
  with pytest.raises(ValueError, match='not divisible by the number of processes 3'):
    pipeline.train_dataset(_source(), global_batch_size=4, seed=0, process_index=0,
                           process_count=3)


def test_array_folder_round_trip(tmp_path):
  fields = {'a': np.arange(12).reshape(4, 3), 'b': np.ones(4, np.float32)}
  sources.save_array_folder(str(tmp_path / 'arr'), fields)
  src = sources.load_array_folder(str(tmp_path / 'arr'))
  assert len(src) == 4
  np.testing.assert_array_equal(src[2]['a'], [6, 7, 8])
  with pytest.raises(FileNotFoundError, match="field 'c' missing"):
    sources.load_array_folder(str(tmp_path / 'arr'), fields=['a', 'c'])


def test_array_source_rejects_ragged_fields():
  with pytest.raises(ValueError, match='different lengths'):
    sources.ArraySource({'a': np.zeros(3), 'b': np.zeros(4)})


def test_digits_are_the_real_sklearn_digits():
  from sklearn.datasets import load_digits
  ref = load_digits()
  train, test = digits.load('train_full'), digits.load('test')
  assert train['image'].shape == (1437, 8, 8, 1) and test['image'].shape == (360, 8, 8, 1)
  allx = np.concatenate([train['image'], test['image']])[..., 0] * 16
  # Same multiset of images as scikit-learn's, each with its label.
  key = lambda im, lab: im.astype(np.int64).tobytes() + bytes([int(lab)])
  ours = sorted(key(im, l) for im, l in zip(allx, np.concatenate([train['label'], test['label']])))
  theirs = sorted(key(im, l) for im, l in zip(ref.images, ref.target))
  assert ours == theirs
  assert set(np.unique(test['label'])) == set(range(10))
  with pytest.raises(ValueError, match="unknown digits split 'tset'"):
    digits.load('tset')
