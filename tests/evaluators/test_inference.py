"""The one inference helper: order, padding, masking, sums, one compilation, errors."""

import numpy as np
import pytest

from jaxvision.data.sources import ArraySource
from jaxvision.evaluators import inference
from tests.evaluators import toy


def test_predict_returns_every_example_once_in_order():
  params, data = toy.params_and_data(n=37)
  ctx = toy.context({'test': data}, params=params)
  traces = []

  def fn(p, batch):
    traces.append(1)
    return toy.linear(p, batch)

  infer = inference.Inference(ctx, fn, keep=('label',))
  for _ in range(2):    # 37 examples, batches of 8: 4 full + 1 padded (3 copies masked)
    out = infer.predict(params, inference.split_batches(ctx, 'test', 8))
    np.testing.assert_allclose(out['logits'], data['x'] @ np.asarray(params['w']), rtol=1e-5,
                               atol=1e-6)
    np.testing.assert_array_equal(out['label'], data['label'])
    assert set(out) == {'logits', 'label'}
  assert len(traces) == 1     # jitted once for both runs


def test_accumulate_sums_only_valid_examples():
  params, data = toy.params_and_data(n=21)
  ctx = toy.context({'test': data}, params=params)
  infer = inference.Inference(ctx, lambda p, b: {'x0': b['x'][:, 0], 'one': b['x'][:, 0] * 0 + 1})
  sums = infer.accumulate(params, inference.split_batches(ctx, 'test', 16), inference.masked_sums)
  assert sums['count'] == 21 and sums['one'] == 21
  assert sums['x0'] == pytest.approx(float(np.sum(data['x'][:, 0])), rel=1e-5)
  legacy = inference.sum_over_dataset(ctx, inference.split_batches(ctx, 'test', 16),
                                      lambda p, b: {'x0': b['x'][:, 0]}, params)
  assert legacy['x0'] == pytest.approx(sums['x0']) and legacy['count'] == 21


def test_extra_arguments_are_replicated():
  params, data = toy.params_and_data(n=8)
  ctx = toy.context({'test': data}, params=params)
  infer = inference.Inference(ctx, lambda p, b, s: {'y': b['x'][:, 0] * s})
  out = infer.predict(params, inference.split_batches(ctx, 'test', 8), np.float32(3.0))
  np.testing.assert_allclose(out['y'], 3 * data['x'][:, 0], rtol=1e-6)


def test_bad_batches_are_named():
  params, data = toy.params_and_data(n=8)
  ctx = toy.context({'test': data}, params=params)
  with pytest.raises(ValueError, match='multiple of the data-parallel mesh size 4'):
    inference.dataset_batches(ctx, ArraySource(data), batch_size=6)
  infer = inference.Inference(ctx, toy.linear)
  with pytest.raises(ValueError, match="lacks the '_mask' field"):
    infer.predict(params, [data])
  no_data = toy.context({}, params=params)
  no_data.data = None
  with pytest.raises(ValueError, match='no eval_data'):
    inference.split_batches(no_data, 'test', 8)
