"""Every shared evaluator type through the dispatcher, against direct metric maths."""

import os

import numpy as np
import pytest
from sklearn import metrics as skm

from jaxvision import config as config_lib
from jaxvision import evaluators
from jaxvision.metrics import detection
from jaxvision.metrics import linear_probe
from jaxvision.metrics import retrieval
from tests.evaluators import toy


def _build(evals, splits, predict_fns, params=None, **kw):
  ctx = toy.context(splits, params=params, **kw)
  return {e.name: e for e in evaluators.make_evaluators(evals, ctx, predict_fns)}


def test_classification_accuracy_and_loss():
  params, data = toy.params_and_data(n=45)
  ev = _build({'val': {'type': 'classification', 'split': 'val', 'batch_size': 16}},
              {'val': data}, {'predict': toy.linear}, params)['val']
  out = ev.run(params)
  logits = data['x'] @ np.asarray(params['w'])
  probs = np.exp(logits - logits.max(1, keepdims=True))
  probs /= probs.sum(1, keepdims=True)
  assert out['count'] == 45
  assert out['accuracy'] == pytest.approx(np.mean(logits.argmax(1) == data['label']))
  assert out['loss'] == pytest.approx(skm.log_loss(data['label'], probs, labels=range(3)),
                                      rel=1e-5)
  # a project loss is used as given
  with_loss = _build({'val': {'type': 'classification', 'split': 'val', 'batch_size': 16}},
                     {'val': data},
                     {'predict': lambda p, b: {**toy.linear(p, b), 'loss': b['x'][:, 0]}},
                     params)['val']
  assert with_loss.run(params)['loss'] == pytest.approx(np.mean(data['x'][:, 0]), rel=1e-5)


def test_linear_probe_equals_the_probe_on_the_features():
  rng = np.random.default_rng(1)
  centers = rng.normal(size=(4, 6)) * 3
  splits = {}
  for split, n in (('train', 40), ('test', 50)):
    y = rng.integers(0, 4, n).astype(np.int32)
    splits[split] = {'x': (centers[y] + rng.normal(size=(n, 6))).astype(np.float32), 'label': y}
  ev = _build({'probe': {'type': 'linear_probe', 'l2_regs': (1.0, 100.0), 'batch_size': 8}},
              splits, {'features': lambda p, b: {'features': b['x'] * 2.0}})['probe']
  out = ev.run({})
  cache = linear_probe.fit(2 * splits['train']['x'], splits['train']['label'], 4)
  for l2 in (1.0, 100.0):
    assert out[f'l2_{l2:g}'] == linear_probe.accuracy(cache, 2 * splits['test']['x'],
                                                      splits['test']['label'], l2)
  assert out['accuracy'] == out['l2_1'] and out['accuracy'] > 0.8 and out['count'] == 50


def test_roc_auc_binary_and_one_vs_rest():
  params, data = toy.params_and_data(n=60)
  logits = data['x'] @ np.asarray(params['w'])
  evs = _build({'bin': {'type': 'roc_auc', 'label_key': 'pos', 'pred': 'class1',
                        'batch_size': 8},
                'ovr': {'type': 'roc_auc', 'batch_size': 8}},
               {'test': dict(data, pos=(data['label'] == 1).astype(np.int32))},
               {'predict': lambda p, b: {'scores': toy.linear(p, b)['logits']},
                'class1': lambda p, b: {'scores': toy.linear(p, b)['logits'][:, 1]}}, params)
  out = evs['bin'].run(params)
  assert out['auc'] == pytest.approx(skm.roc_auc_score(data['label'] == 1, logits[:, 1]),
                                     abs=1e-6)
  assert out['average_precision'] == pytest.approx(
      skm.average_precision_score(data['label'] == 1, logits[:, 1]), abs=1e-6)
  onehot = np.eye(3)[data['label']]
  out = evs['ovr'].run(params)
  assert out['auc'] == pytest.approx(skm.roc_auc_score(onehot, logits, average='macro'), abs=1e-6)


def test_retrieval_with_and_without_a_gallery():
  params, data = toy.params_and_data(n=40, d=5)
  gallery = toy.params_and_data(n=24, d=5, seed=3)[1]
  evs = _build({'loo': {'type': 'retrieval', 'ks': (1, 3), 'batch_size': 8},
                'qg': {'type': 'retrieval', 'gallery_split': 'gallery', 'batch_size': 8}},
               {'test': data, 'gallery': gallery},
               {'embed': lambda p, b: {'embedding': b['x']}})
  loo = evs['loo'].run({})
  want = retrieval.retrieval_metrics(retrieval.cosine_similarity(data['x'], data['x']),
                                     data['label'], data['label'], ks=(1, 3), exclude_self=True)
  assert loo == pytest.approx(want)
  qg = evs['qg'].run({})
  want = retrieval.retrieval_metrics(retrieval.cosine_similarity(data['x'], gallery['x']),
                                     data['label'], gallery['label'], ks=(1, 5, 10))
  assert qg == pytest.approx(want)


def test_detection_drops_padding_rows():
  rng = np.random.default_rng(2)
  n, g = 10, 4
  xy = rng.uniform(0, 100, (n, g, 2))
  gt_boxes = np.concatenate([xy, xy + rng.uniform(10, 80, (n, g, 2))], -1).astype(np.float32)
  gt_classes = rng.integers(-1, 2, (n, g)).astype(np.int32)      # -1 = padding
  data = {'gt_boxes': gt_boxes, 'gt_classes': gt_classes,
          'noise': rng.normal(0, 4, (n, g, 4)).astype(np.float32),
          'det_scores': rng.random((n, g)).astype(np.float32)}

  def predict(p, b):
    return {'boxes': b['gt_boxes'] + b['noise'], 'scores': b['det_scores'],
            'classes': b['gt_classes']}

  ev = _build({'coco': {'type': 'detection', 'batch_size': 4, 'gt_crowd_key': '',
                        'gt_area_key': ''}}, {'test': data}, {'predict': predict})['coco']
  out = ev.run({})
  dets = [{'boxes': (gt_boxes + data['noise'])[i][gt_classes[i] >= 0],
           'scores': data['det_scores'][i][gt_classes[i] >= 0],
           'classes': gt_classes[i][gt_classes[i] >= 0]} for i in range(n)]
  gts = [{'boxes': gt_boxes[i][gt_classes[i] >= 0], 'classes': gt_classes[i][gt_classes[i] >= 0]}
         for i in range(n)]
  want = detection.coco_evaluate(dets, gts)
  assert {k: out[k] for k in want} == pytest.approx(want, abs=1e-6)
  assert 0.2 < out['AP'] < 1.0 and out['count'] == n


def test_segmentation_miou_with_ignore_index():
  rng = np.random.default_rng(4)
  n, k = 11, 4
  label = rng.integers(0, k, (n, 6, 6)).astype(np.int32)
  label[rng.random(label.shape) < 0.2] = 255
  noise = (rng.random((n, 6, 6)) < 0.3).astype(np.int32)
  data = {'label': label, 'noise': noise}
  ev = _build({'seg': {'type': 'segmentation', 'num_classes': k, 'batch_size': 4,
                       'per_class': True}}, {'test': data},
              {'predict': lambda p, b: {'labels': (b['label'] % 255 + b['noise']) % 4}})['seg']
  out = ev.run({})
  keep = label != 255
  pred = ((label % 255 + noise) % 4)[keep]
  assert out['miou'] == pytest.approx(skm.jaccard_score(label[keep], pred, average='macro'))
  assert out['pixel_accuracy'] == pytest.approx(np.mean(label[keep] == pred))
  assert out['pixels'] == keep.sum() and 'iou/3' in out


def test_geodesic_error_mean_per_pair_and_pck():
  rng = np.random.default_rng(5)
  n, v = 6, 12
  i = np.arange(v)
  ring = np.minimum(np.abs(i[:, None] - i[None]), v - np.abs(i[:, None] - i[None])) / v
  data = {'geodesic': np.repeat(ring[None], n, 0).astype(np.float32),
          'gt_correspondence': np.stack([rng.permutation(v) for _ in range(n)]).astype(np.int32),
          'shift': rng.integers(-2, 3, (n, v)).astype(np.int32),
          'vertex_mask': (rng.random((n, v)) < 0.8)}
  ev = _build({'geo': {'type': 'geodesic_error', 'batch_size': 4, 'max_threshold': 0.2,
                       'num_thresholds': 5, 'report_at': (0.1,)}}, {'test': data},
              {'predict': lambda p, b: {'correspondence':
                                        (b['gt_correspondence'] + b['shift']) % v}})['geo']
  out = ev.run({})
  err = np.abs(data['shift']) / v
  m = data['vertex_mask']
  assert out['mean_error'] == pytest.approx(np.mean([e[k].mean() for e, k in zip(err, m)]),
                                            abs=1e-6)
  curve = [(err[m] <= t + 1e-6).mean() for t in np.linspace(0, 0.2, 5)]
  assert out['auc'] == pytest.approx(np.trapezoid(curve, np.linspace(0, 0.2, 5)) / 0.2,
                                     abs=1e-6)
  assert out['pck@0.1'] == pytest.approx((err[m] <= 0.1 + 1e-6).mean())
  assert out['pairs'] == n


def test_save_predictions_writes_every_example(tmp_path):
  params, data = toy.params_and_data(n=13)
  ev = _build({'dump': {'type': 'save_predictions', 'batch_size': 8, 'keep': ('label',)}},
              {'test': data}, {'predict': toy.linear}, params, workdir=str(tmp_path))['dump']
  assert ev.run(params) == {'count': 13.0}
  with np.load(os.path.join(tmp_path, 'predictions', 'dump.npz')) as f:
    assert set(f.files) == {'logits', 'label'}
    np.testing.assert_array_equal(f['label'], data['label'])
    np.testing.assert_allclose(f['logits'], data['x'] @ np.asarray(params['w']), rtol=1e-5,
                               atol=1e-6)


def test_dispatcher_errors_name_the_entry():
  params, data = toy.params_and_data(n=8)
  fns = {'predict': toy.linear}
  with pytest.raises(config_lib.ConfigError, match=r"config.evals.a.type='nope'.*known:.*"
                     r"classification"):
    _build({'a': {'type': 'nope'}}, {'test': data}, fns)
  with pytest.raises(config_lib.ConfigError, match=r"missing required config key "
                     r"'config.evals.a.type'"):
    _build({'a': {'split': 'test'}}, {'test': data}, fns)
  with pytest.raises(config_lib.ConfigError, match=r"unknown config key 'config.evals.a.bach_size'"
                     r".*did you mean 'batch_size'"):
    _build({'a': {'type': 'classification', 'bach_size': 8}}, {'test': data}, fns)
  with pytest.raises(config_lib.ConfigError, match=r"config.evals.a.pred='logits'.*available: "
                     r"\['predict'\]"):
    _build({'a': {'type': 'classification', 'pred': 'logits'}}, {'test': data}, fns)
  with pytest.raises(config_lib.ConfigError, match="config.evals.a.num_classes"):
    _build({'a': {'type': 'segmentation'}}, {'test': data}, fns)
  with pytest.raises(ValueError, match='shadow'):
    evaluators.make_evaluators({}, None, fns, extra={'classification': object})
  ev = _build({'a': {'type': 'classification', 'batch_size': 8}}, {'test': data},
              {'predict': lambda p, b: {'scores': b['x']}}, params)['a']
  with pytest.raises(ValueError, match="config.evals.a: prediction function 'predict' returned "
                     r"\['scores'\], no 'logits'"):
    ev.run(params)


def test_project_types_are_built_and_named_in_errors():
  class Custom:
    DEFAULTS = {'type': 'custom', 'every': 3}

    def __init__(self, name, cfg, ctx, predict_fns):
      self.name, self.every = name, cfg.every

  evs = evaluators.make_evaluators({'c': {'type': 'custom'}}, None, {}, extra={'custom': Custom})
  assert isinstance(evs[0], Custom) and evs[0].every == 3
  with pytest.raises(config_lib.ConfigError, match='custom'):
    evaluators.make_evaluators({'c': {'type': 'other'}}, None, {}, extra={'custom': Custom})
