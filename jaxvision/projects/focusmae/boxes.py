"""Candidate-region boxes in upstream FocusMAE's detector JSON format.

Basu et al., CVPR 2024, Sec. 3.2: the focus prior comes from candidate regions of an
object detector (upstream: torchvision Faster R-CNN, `Faster-RCNN/test.py`, score
threshold 0.25), written as
`{"results": [{"image_id": "<video>_<frame>", "Boxes": [[x1, y1, x2, y2], ...],
"Scores": [...]}, ...]}`. `read_box_json` returns {video: {frame: (boxes (K, 4),
scores (K,))}} keeping boxes with score >= `min_score`; `frame_boxes` pads one frame's
boxes (highest scores first, rescaled to the model's input frame) to a fixed count with
a validity mask, what `masking.region_prior` takes. Bad files are refused by name.
"""

from __future__ import annotations

import json
import os
from typing import Any

import numpy as np

from jaxvision.data.errors import DataFileError, require_file

MAX_BYTES = 1 << 30


def _entry_boxes(entry: Any, path: Any, i: int) -> tuple[str, int, np.ndarray, np.ndarray]:
  where = f'results[{i}]'
  if not isinstance(entry, dict) or not {'image_id', 'Boxes'} <= set(entry):
    raise DataFileError(path, f'{where} must be an object with "image_id" and "Boxes"')
  image_id = str(entry['image_id'])
  video, sep, frame = image_id.rpartition('_')
  if not sep or not video or not frame.isdigit():
    raise DataFileError(path, f'{where}: image_id {image_id!r} is not "<video>_<frame>"')
  try:
    boxes = np.asarray(entry['Boxes'], np.float64).reshape(-1, 4) if entry['Boxes'] else (
        np.zeros((0, 4)))
    scores = np.asarray(entry.get('Scores', [1.0] * len(boxes)), np.float64).reshape(-1)
  except (TypeError, ValueError) as e:
    raise DataFileError(path, f'{where}: Boxes must be [[x1, y1, x2, y2], ...] numbers ({e})'
                        ) from None
  if len(scores) != len(boxes):
    raise DataFileError(path, f'{where}: {len(boxes)} boxes but {len(scores)} scores')
  if not (np.isfinite(boxes).all() and np.isfinite(scores).all()):
    raise DataFileError(path, f'{where}: non-finite box coordinates or scores')
  if (boxes[:, 2] < boxes[:, 0]).any() or (boxes[:, 3] < boxes[:, 1]).any():
    raise DataFileError(path, f'{where}: a box has x2 < x1 or y2 < y1')
  return video, int(frame), boxes, scores


def read_box_json(path: Any, min_score: float = 0.25) -> dict[str, dict[int, tuple]]:
  """{video: {frame: (boxes (K, 4) float32, scores (K,) float32)}}, boxes >= min_score."""
  require_file(path, 'detector box JSON')
  if os.path.getsize(path) > MAX_BYTES:
    raise DataFileError(path, f'larger than {MAX_BYTES} bytes')
  try:
    with open(path, encoding='utf-8') as f:
      doc = json.load(f)
  except (ValueError, UnicodeDecodeError) as e:
    raise DataFileError(path, f'not valid JSON ({e})') from None
  if not isinstance(doc, dict) or not isinstance(doc.get('results'), list):
    raise DataFileError(path, 'expected {"results": [...]} (upstream detector output)')
  table: dict[str, dict[int, tuple]] = {}
  for i, entry in enumerate(doc['results']):
    video, frame, boxes, scores = _entry_boxes(entry, path, i)
    keep = scores >= min_score
    frames = table.setdefault(video, {})
    if frame in frames:
      raise DataFileError(path, f'results[{i}]: image_id {video}_{frame} appears twice')
    frames[frame] = (boxes[keep].astype(np.float32), scores[keep].astype(np.float32))
  return table


def frame_boxes(table: dict, video: str, frame: int, max_boxes: int,
                scale: tuple[float, float] = (1.0, 1.0)) -> tuple[np.ndarray, np.ndarray]:
  """((max_boxes, 4) boxes scaled by (sx, sy), (max_boxes,) valid): top scores first.

  A video or frame without detections gives no valid box (the prior's central box).
  """
  boxes, scores = table.get(video, {}).get(int(frame), (np.zeros((0, 4)), np.zeros((0,))))
  order = np.argsort(-scores, kind='stable')[:max_boxes]
  out = np.zeros((max_boxes, 4), np.float32)
  valid = np.zeros((max_boxes,), bool)
  sx, sy = scale
  out[:len(order)] = boxes[order] * np.array([sx, sy, sx, sy], np.float32)
  valid[:len(order)] = True
  return out, valid
