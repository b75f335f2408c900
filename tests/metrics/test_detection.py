"""COCO box AP against hand-computed cases and an independent numpy reference.

The reference below follows the COCO definitions directly and in a different form from
`jaxvision.metrics.detection`: a detection's match is chosen among the candidate
ground truths (best IoU, non-ignored preferred) instead of a scan with early exit, and
the interpolated precision at recall r is max{precision at recall >= r} computed by
brute force instead of a running maximum plus `searchsorted`.
"""

import numpy as np
import pytest

from jaxvision.metrics import detection

SIZES = {'all': (0, 1e10), 'small': (0, 32 ** 2), 'medium': (32 ** 2, 96 ** 2),
         'large': (96 ** 2, 1e10)}


def _iou(a, b, crowd):
  iw = min(a[2], b[2]) - max(a[0], b[0])
  ih = min(a[3], b[3]) - max(a[1], b[1])
  inter = max(iw, 0) * max(ih, 0)
  area = lambda x: (x[2] - x[0]) * (x[3] - x[1])
  union = area(a) if crowd else area(a) + area(b) - inter
  return inter / union if union > 0 else 0.0


def _reference_ap(dets, gts, cat, thr, rng, max_det=100):
  """(AP, recall) of one category at one IoU threshold and size range; None if no gt."""
  records, n_gt = [], 0
  for det, gt in zip(dets, gts):
    g_idx = [j for j in range(len(gt['classes'])) if gt['classes'][j] == cat]
    crowd = [bool(gt.get('crowd', np.zeros(len(gt['classes'])))[j]) for j in g_idx]
    areas = [(gt['boxes'][j][2] - gt['boxes'][j][0]) * (gt['boxes'][j][3] - gt['boxes'][j][1])
             for j in g_idx]
    ignored = [c or not rng[0] <= a <= rng[1] for c, a in zip(crowd, areas)]
    n_gt += sum(not i for i in ignored)
    d_idx = [j for j in range(len(det['classes'])) if det['classes'][j] == cat]
    d_idx = sorted(d_idx, key=lambda j: -det['scores'][j])[:max_det]
    taken = [False] * len(g_idx)
    for j in d_idx:
      box = det['boxes'][j]
      cands = [(i, _iou(box, gt['boxes'][g], crowd[i])) for i, g in enumerate(g_idx)
               if (not taken[i] or crowd[i])]
      cands = [(i, v) for i, v in cands if v >= min(thr, 1 - 1e-10)]
      normal = [(i, v) for i, v in cands if not ignored[i]]
      pool = normal or cands
      if pool:
        best = max(v for _, v in pool)
        i = [i for i, v in pool if v == best][-1]
        taken[i] = True
        status = 'ignore' if ignored[i] else 'tp'
      else:
        a = (box[2] - box[0]) * (box[3] - box[1])
        status = 'fp' if rng[0] <= a <= rng[1] else 'ignore'
      records.append((det['scores'][j], status))
  if n_gt == 0:
    return None
  records = [r for r in sorted(records, key=lambda r: -r[0]) if r[1] != 'ignore']
  tp = np.cumsum([r[1] == 'tp' for r in records])
  prec = tp / np.arange(1, len(records) + 1)
  rec = tp / n_gt
  ap = np.mean([max([p for p, r in zip(prec, rec) if r >= t], default=0.0)
                for t in np.linspace(0, 1, 101)])
  return ap, (rec[-1] if len(rec) else 0.0)


def _reference(dets, gts):
  cats = sorted({int(c) for g in gts for c in g['classes']})
  thresholds = np.linspace(0.5, 0.95, 10)
  out = {}
  for size, rng in SIZES.items():
    table = [[_reference_ap(dets, gts, c, t, rng) for c in cats] for t in thresholds]
    aps = [[v[0] for v in row if v is not None] for row in table]
    out[size] = (np.mean(aps) if aps[0] else -1.0,
                 np.mean([[v[1] for v in row if v is not None] for row in table])
                 if aps[0] else -1.0)
    if size == 'all':
      out['AP50'] = np.mean(aps[0])
      out['AP75'] = np.mean(aps[5])
  return out


def _one(box, score=1.0, cls=0):
  return {'boxes': np.array([box], float), 'scores': np.array([score]), 'classes': np.array([cls])}


def test_hand_computed_cases():
  gt = {'boxes': np.array([[0, 0, 10, 10]], float), 'classes': np.array([0])}
  exact = detection.coco_evaluate([_one([0, 0, 10, 10])], [gt])
  for key in ('AP', 'AP50', 'AP75', 'AR100', 'AP_small'):
    assert exact[key] == pytest.approx(1.0), key
  assert exact['AP_medium'] == -1.0   # area 100 is small: no medium object
  # IoU 0.8: a match for the thresholds 0.50..0.80 (7 of 10)
  partial = detection.coco_evaluate([_one([0, 0, 10, 8])], [gt])
  assert (partial['AP'], partial['AP50'], partial['AP75']) == pytest.approx((0.7, 1, 1))
  # two objects, one found (score .9), one false positive (score .8):
  # precision 1 up to recall 0.5 -> 51 of 101 recall points
  gt2 = {'boxes': np.array([[0, 0, 10, 10], [50, 50, 60, 60]], float), 'classes': np.array([0, 0])}
  det2 = {'boxes': np.array([[0, 0, 10, 10], [20, 20, 30, 30]], float),
          'scores': np.array([0.9, 0.8]), 'classes': np.array([0, 0])}
  half = detection.coco_evaluate([det2], [gt2])
  assert half['AP'] == pytest.approx(51 / 101) and half['AR100'] == pytest.approx(0.5)
  # false positive ranked first: precision 1/2 at recall 1/2 -> AP = 51 / 101 / 2
  det3 = dict(det2, scores=np.array([0.8, 0.9]))
  assert detection.coco_evaluate([det3], [gt2])['AP'] == pytest.approx(51 / 101 / 2)
  # a detection inside a crowd region is neither a hit nor a false positive
  gt_crowd = {'boxes': np.array([[0, 0, 10, 10], [100, 100, 200, 200]], float),
              'classes': np.array([0, 0]), 'crowd': np.array([False, True])}
  det4 = {'boxes': np.array([[0, 0, 10, 10], [120, 120, 140, 140]], float),
          'scores': np.array([0.5, 0.9]), 'classes': np.array([0, 0])}
  assert detection.coco_evaluate([det4], [gt_crowd])['AP'] == pytest.approx(1.0)
  # a detection on an object that lies in a crowd region counts for the object
  gt_both = {'boxes': np.array([[0, 0, 10, 10], [0, 0, 10, 10]], float),
             'classes': np.array([0, 0]), 'crowd': np.array([False, True])}
  assert detection.coco_evaluate([_one([0, 0, 10, 10])], [gt_both])['AP'] == pytest.approx(1.0)
  # only the AR1 setting cuts to the top-scoring detection per image
  assert detection.coco_evaluate([det3], [gt2])['AR1'] == 0.0


def test_random_scenes_match_the_reference():
  rng = np.random.default_rng(0)
  dets, gts = [], []
  for _ in range(6):
    n = rng.integers(1, 7)
    xy = rng.uniform(0, 150, (n, 2))
    wh = rng.uniform(8, 120, (n, 2))
    g_boxes = np.concatenate([xy, xy + wh], 1)
    g_cls = rng.integers(0, 3, n)
    crowd = rng.random(n) < 0.15
    # detections: jittered copies of the objects, some misses, plus clutter
    keep = rng.random(n) < 0.8
    jitter = rng.normal(0, 3, (n, 4))
    d_boxes = np.concatenate([(g_boxes + jitter)[keep], np.concatenate(
        [xy[:2], xy[:2] + rng.uniform(8, 60, (min(n, 2), 2))], 1)])
    d_boxes[:, 2:] = np.maximum(d_boxes[:, 2:], d_boxes[:, :2] + 1)
    d_cls = np.concatenate([g_cls[keep], rng.integers(0, 3, min(n, 2))])
    scores = rng.random(len(d_boxes)) + np.concatenate([np.full(keep.sum(), 0.5),
                                                        np.zeros(min(n, 2))])
    dets.append({'boxes': d_boxes, 'scores': scores, 'classes': d_cls})
    gts.append({'boxes': g_boxes, 'classes': g_cls, 'crowd': crowd})
  ours = detection.coco_evaluate(dets, gts)
  ref = _reference(dets, gts)
  assert 0.1 < ours['AP'] < 0.95
  assert ours['AP'] == pytest.approx(ref['all'][0], abs=1e-9)
  assert ours['AP50'] == pytest.approx(ref['AP50'], abs=1e-9)
  assert ours['AP75'] == pytest.approx(ref['AP75'], abs=1e-9)
  assert ours['AR100'] == pytest.approx(ref['all'][1], abs=1e-9)
  for size in ('small', 'medium', 'large'):
    assert ours[f'AP_{size}'] == pytest.approx(ref[size][0], abs=1e-9), size
    assert ours[f'AR_{size}'] == pytest.approx(ref[size][1], abs=1e-9), size


def test_bad_input_is_named():
  gt = {'boxes': np.zeros((1, 4)), 'classes': np.array([0])}
  with pytest.raises(ValueError, match='image 0: detections lack'):
    detection.coco_evaluate([{'boxes': np.zeros((1, 4))}], [gt])
  with pytest.raises(ValueError, match='NaN'):
    detection.coco_evaluate([_one([0, 0, np.nan, 1])], [gt])
  with pytest.raises(ValueError, match='2 detection lists for 1 images'):
    detection.coco_evaluate([_one([0, 0, 1, 1])] * 2, [gt])
