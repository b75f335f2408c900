"""COCO-style box detection metrics: AP over IoU thresholds 0.5:0.05:0.95, AP50, AP75,
AP per object size, and AR at 1/10/100 detections per image.

The protocol of the COCO evaluation (Lin et al., "Microsoft COCO", ECCV 2014; the
pycocotools `COCOeval` algorithm, re-implemented here in numpy):

- per image and category, detections sorted by score (stable) and cut to the largest
  max-detections setting; ground truths sorted with the ignored ones last (crowd, or
  area outside the size range);
- per IoU threshold, each detection in score order is matched greedily to the
  unmatched ground truth of highest IoU >= threshold, preferring non-ignored ground
  truths; a crowd region can match many detections and its IoU is
  intersection / detection area; a detection matched to an ignored ground truth, or
  unmatched and outside the size range, is ignored;
- per category: detections of all images (each cut to max-dets) sorted by score,
  precision made monotone, sampled at 101 recall points 0:0.01:1 (0 past the last
  recall reached); AP is the mean over recall points, categories that have
  non-ignored ground truth, and IoU thresholds; AR is the final recall, averaged alike.

Boxes are (x0, y0, x1, y1) in pixels; areas default to the box areas.  Size ranges
(inclusive, in pixels^2): small [0, 32^2], medium [32^2, 96^2], large [96^2, 1e10].
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

IOU_THRESHOLDS = np.linspace(0.5, 0.95, 10)
RECALL_POINTS = np.linspace(0.0, 1.0, 101)
AREA_RANGES = {'all': (0.0, 1e10), 'small': (0.0, 32.0 ** 2), 'medium': (32.0 ** 2, 96.0 ** 2),
               'large': (96.0 ** 2, 1e10)}
MAX_DETS = (1, 10, 100)


def box_area(boxes):
  b = np.asarray(boxes, np.float64).reshape(-1, 4)
  return np.maximum(b[:, 2] - b[:, 0], 0) * np.maximum(b[:, 3] - b[:, 1], 0)


def box_iou(dets, gts, crowd=None):
  """(D, G) IoU of xyxy boxes; for crowd ground truths, intersection / detection area."""
  d = np.asarray(dets, np.float64).reshape(-1, 4)
  g = np.asarray(gts, np.float64).reshape(-1, 4)
  w = np.minimum(d[:, None, 2], g[None, :, 2]) - np.maximum(d[:, None, 0], g[None, :, 0])
  h = np.minimum(d[:, None, 3], g[None, :, 3]) - np.maximum(d[:, None, 1], g[None, :, 1])
  inter = np.maximum(w, 0) * np.maximum(h, 0)
  ad, ag = box_area(d)[:, None], box_area(g)[None, :]
  union = ad + ag - inter
  if crowd is not None:
    union = np.where(np.asarray(crowd, bool)[None, :], ad, union)
  return np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)


def _check_image(i, det, gt):
  for what, d, keys in (('detections', det, ('boxes', 'scores', 'classes')),
                        ('ground truth', gt, ('boxes', 'classes'))):
    missing = [k for k in keys if k not in d]
    if missing:
      raise ValueError(f'image {i}: {what} lack {missing}')
    n = len(np.asarray(d['classes']).reshape(-1))
    if np.asarray(d['boxes']).reshape(-1, 4).shape[0] != n:
      raise ValueError(f'image {i}: {what} have {n} classes but boxes of shape '
                       f'{np.asarray(d["boxes"]).shape}')
    if not np.all(np.isfinite(np.asarray(d['boxes'], np.float64))):
      raise ValueError(f'image {i}: {what} boxes contain NaN or inf')
  if len(np.asarray(det['scores']).reshape(-1)) != len(np.asarray(det['classes']).reshape(-1)):
    raise ValueError(f'image {i}: detections have unequal numbers of scores and classes')


def _match_image(det_boxes, det_scores, gt_boxes, gt_crowd, gt_area, area_rng, max_det,
                 iou_thresholds):
  """One image, one category, one size range: what pycocotools' evaluateImg returns."""
  gt_ignore = gt_crowd | (gt_area < area_rng[0]) | (gt_area > area_rng[1])
  g_order = np.argsort(gt_ignore, kind='stable')
  gt_boxes, gt_crowd, gt_ignore = gt_boxes[g_order], gt_crowd[g_order], gt_ignore[g_order]
  d_order = np.argsort(-det_scores, kind='stable')[:max_det]
  det_boxes, det_scores = det_boxes[d_order], det_scores[d_order]
  ious = box_iou(det_boxes, gt_boxes, gt_crowd)
  n_t, n_d, n_g = len(iou_thresholds), len(det_boxes), len(gt_boxes)
  gt_taken = np.zeros((n_t, n_g), bool)
  det_matched = np.zeros((n_t, n_d), bool)
  det_ignore = np.zeros((n_t, n_d), bool)
  for t, thr in enumerate(iou_thresholds):
    for di in range(n_d):
      best, m = min(thr, 1 - 1e-10), -1
      for gi in range(n_g):
        if gt_taken[t, gi] and not gt_crowd[gi]:
          continue
        if m > -1 and not gt_ignore[m] and gt_ignore[gi]:
          break     # ground truths are sorted: only ignored ones are left
        if ious[di, gi] < best:
          continue
        best, m = ious[di, gi], gi
      if m > -1:
        det_matched[t, di] = True
        det_ignore[t, di] = gt_ignore[m]
        gt_taken[t, m] = True
  det_area = box_area(det_boxes)
  outside = (det_area < area_rng[0]) | (det_area > area_rng[1])
  det_ignore |= ~det_matched & outside[None, :]
  return det_scores, det_matched, det_ignore, gt_ignore


def _precision_recall(scores, matched, ignored, n_gt):
  """Interpolated precision at RECALL_POINTS (T, R) and final recall (T,) of one category."""
  order = np.argsort(-scores, kind='stable')
  matched, ignored = matched[:, order], ignored[:, order]
  tp = np.cumsum(matched & ~ignored, axis=1).astype(np.float64)
  fp = np.cumsum(~matched & ~ignored, axis=1).astype(np.float64)
  n_t = matched.shape[0]
  precision = np.zeros((n_t, len(RECALL_POINTS)))
  recall = np.zeros(n_t)
  for t in range(n_t):
    if tp.shape[1] == 0:
      continue
    rc = tp[t] / n_gt
    pr = tp[t] / (tp[t] + fp[t] + np.spacing(1))
    recall[t] = rc[-1]
    pr = np.maximum.accumulate(pr[::-1])[::-1]
    idx = np.searchsorted(rc, RECALL_POINTS, side='left')
    ok = idx < len(rc)
    precision[t, ok] = pr[idx[ok]]
  return precision, recall


def coco_evaluate(detections: Sequence[Mapping[str, np.ndarray]],
                  ground_truths: Sequence[Mapping[str, np.ndarray]], *,
                  iou_thresholds=IOU_THRESHOLDS, max_dets: Sequence[int] = MAX_DETS,
                  area_ranges: Mapping[str, tuple[float, float]] | None = None,
                  categories: Sequence[int] | None = None) -> dict[str, float]:
  """COCO summary metrics over images.

  detections[i]: {'boxes' (D, 4), 'scores' (D,), 'classes' (D,)};
  ground_truths[i]: {'boxes' (G, 4), 'classes' (G,), optional 'crowd' (G,) bool,
  optional 'area' (G,)}.  `categories`: evaluated class ids (default: every class of
  the ground truth).  Returns AP, AP50, AP75, AP_<size>, AR<k> (k in max_dets) and
  AR_<size>; a value is -1 where no category has non-ignored ground truth.
  """
  if len(detections) != len(ground_truths):
    raise ValueError(f'{len(detections)} detection lists for {len(ground_truths)} images')
  area_ranges = dict(AREA_RANGES if area_ranges is None else area_ranges)
  if 'all' not in area_ranges:
    raise ValueError("area_ranges needs an 'all' range")
  iou_thresholds = np.asarray(iou_thresholds, np.float64)
  max_dets = sorted(int(m) for m in max_dets)
  images = []
  for i, (det, gt) in enumerate(zip(detections, ground_truths)):
    _check_image(i, det, gt)
    g_boxes = np.asarray(gt['boxes'], np.float64).reshape(-1, 4)
    images.append({
        'db': np.asarray(det['boxes'], np.float64).reshape(-1, 4),
        'ds': np.asarray(det['scores'], np.float64).reshape(-1),
        'dc': np.asarray(det['classes']).reshape(-1),
        'gb': g_boxes, 'gc': np.asarray(gt['classes']).reshape(-1),
        'gcrowd': np.asarray(gt.get('crowd', np.zeros(len(g_boxes), bool)), bool).reshape(-1),
        'garea': (np.asarray(gt['area'], np.float64).reshape(-1) if 'area' in gt
                  else box_area(g_boxes)),
    })
  if categories is None:
    categories = sorted({int(c) for im in images for c in im['gc']})
  n_t = len(iou_thresholds)
  # precision[area][maxdet]: (T, R, K); recall: (T, K); -1 where a category has no gt.
  prec = {a: {m: -np.ones((n_t, len(RECALL_POINTS), len(categories))) for m in max_dets}
          for a in area_ranges}
  rec = {a: {m: -np.ones((n_t, len(categories))) for m in max_dets} for a in area_ranges}
  for k, cat in enumerate(categories):
    for a, rng in area_ranges.items():
      per_image = []
      for im in images:
        dsel, gsel = im['dc'] == cat, im['gc'] == cat
        if not dsel.any() and not gsel.any():
          continue
        per_image.append(_match_image(im['db'][dsel], im['ds'][dsel], im['gb'][gsel],
                                      im['gcrowd'][gsel], im['garea'][gsel], rng,
                                      max_dets[-1], iou_thresholds))
      if not per_image:
        continue
      n_gt = int(sum(np.sum(~e[3]) for e in per_image))
      if n_gt == 0:
        continue
      for m in max_dets:
        scores = np.concatenate([e[0][:m] for e in per_image])
        matched = np.concatenate([e[1][:, :m] for e in per_image], axis=1)
        ignored = np.concatenate([e[2][:, :m] for e in per_image], axis=1)
        p, r = _precision_recall(scores, matched, ignored, n_gt)
        prec[a][m][:, :, k], rec[a][m][:, k] = p, r
  return _summarize(prec, rec, iou_thresholds, max_dets)


def _mean_valid(x):
  x = x[x > -1]
  return float(np.mean(x)) if x.size else -1.0


def _summarize(prec, rec, iou_thresholds, max_dets):
  top = max_dets[-1]
  out = {'AP': _mean_valid(prec['all'][top])}
  for thr, key in ((0.5, 'AP50'), (0.75, 'AP75')):
    hit = np.where(np.isclose(iou_thresholds, thr))[0]
    if hit.size:
      out[key] = _mean_valid(prec['all'][top][hit])
  for a in prec:
    if a != 'all':
      out[f'AP_{a}'] = _mean_valid(prec[a][top])
  for m in max_dets:
    out[f'AR{m}'] = _mean_valid(rec['all'][m])
  for a in rec:
    if a != 'all':
      out[f'AR_{a}'] = _mean_valid(rec[a][top])
  return out
