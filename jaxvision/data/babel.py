"""Babel-style multi-segment motion sequences (Punnakkal et al. 2021; FlowMDM's loader).

BABEL annotates AMASS sequences with frame-level action segments.  The annotation file
`<root>/<split>.json` is BABEL's own format:

  {babel_sid: {"babel_sid": ..., "dur": seconds,
               "frame_ann": {"labels": [{"proc_label": "walk", "start_t": 0.0,
                                         "end_t": 2.1}, ...]} | null,
               "seq_ann": {"labels": [{"proc_label": ...}]}}}

and the motion of each sequence is a feature array `<root>/motions/<babel_sid>.npy`
(T, D) at `fps` (30 for BABEL; FlowMDM's 135-d SMPL-H rot6d features, or any
representation).  Sequences without frame labels are skipped, as in FlowMDM.

FlowMDM trains on windows of CONSECUTIVE segments, [act1, (transition), act2, ...],
each window at most `max_frames` long and at most 10 segments, one window per starting
segment (`babel_flowmdm.extract_frame_labels`).  'transition' segments are not
conditions of their own: they are absorbed by making the segments consecutive, each gap
or overlap split half and half between its neighbours (`process_actions`).  This reader
builds the windows by that rule from the segments sorted by start: a segment follows
the previous one if it starts after it starts and ends after it ends.  (Upstream
enumerates every branch when several labels overlap; this keeps the first.)
Windows whose total length is outside [min_frames, max_frames] are dropped (FlowMDM:
45 and 250 frames, with 200 as the window limit).

`read_annotations` refuses (`DataFileError` naming the file and the sequence) JSON
that is not an object of objects, frame labels that are not a list of objects with a
`proc_label` string and finite, non-negative numbers `start_t` <= `end_t`; motions
are read with `errors.read_npy` (finite (T, D) arrays, truncated files refused).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os

import numpy as np

from jaxvision.data.errors import DataFileError
from jaxvision.data.errors import read_npy

TRANSITION = 'transition'


@dataclasses.dataclass(frozen=True)
class Window:
  name: str
  motion: np.ndarray                  # (sum(lengths), D)
  texts: tuple[str, ...]
  lengths: tuple[int, ...]


def read_annotations(root: str, split: str) -> dict:
  path = os.path.join(root, f'{split}.json')
  if not os.path.exists(path):
    raise FileNotFoundError(f'Babel annotation file not found: {path}')
  try:
    with open(path, encoding='utf-8') as f:
      data = json.load(f)
  except (json.JSONDecodeError, UnicodeDecodeError) as e:
    raise DataFileError(path, f'not valid JSON ({e})') from None
  if not isinstance(data, dict):
    raise DataFileError(path, 'expected a JSON object keyed by babel_sid')
  for sid, ann in data.items():
    check_annotation(ann, path, sid)
  return data


def _time(value) -> bool:
  return (isinstance(value, (int, float)) and not isinstance(value, bool)
          and math.isfinite(value) and value >= 0)


def check_annotation(ann, path: str, sid: str) -> None:
  """DataFileError naming `path` and the sequence unless `ann` is a BABEL annotation."""
  if not isinstance(ann, dict):
    raise DataFileError(path, f'sequence {sid!r}: expected an object, got {type(ann).__name__}')
  frame_ann = ann.get('frame_ann')
  if not frame_ann:
    return
  labels = frame_ann.get('labels') if isinstance(frame_ann, dict) else None
  if not isinstance(labels, list):
    raise DataFileError(path, f'sequence {sid!r}: frame_ann must be an object with a '
                        '"labels" list')
  for i, label in enumerate(labels):
    where = f'sequence {sid!r} frame label {i}'
    if not isinstance(label, dict):
      raise DataFileError(path, f'{where}: expected an object, got {type(label).__name__}')
    missing = [k for k in ('proc_label', 'start_t', 'end_t') if k not in label]
    if missing:
      raise DataFileError(path, f'{where}: missing keys {missing}')
    if not isinstance(label['proc_label'], str):
      raise DataFileError(path, f'{where}: proc_label must be a string, got '
                          f'{label["proc_label"]!r}')
    start, end = label['start_t'], label['end_t']
    if not (_time(start) and _time(end)) or end < start:
      raise DataFileError(path, f'{where}: start_t {start!r} and end_t {end!r} must be '
                          'finite non-negative numbers with start_t <= end_t')


def frame_segments(annotation: dict, fps: float, num_frames: int):
  """Sorted (start, end, label) frame segments of one sequence; [] without frame labels."""
  frame_ann = annotation.get('frame_ann')
  if not frame_ann:
    return []
  segs = []
  for label in frame_ann.get('labels', []):
    start = int(label['start_t'] * fps)
    end = min(num_frames, int(label['end_t'] * fps))
    if end > start:
      segs.append((start, end, str(label['proc_label']).strip()))
  return sorted(segs)


def make_consecutive(segments):
  """FlowMDM's `process_actions`: split each gap/overlap between neighbours (inclusive ends)."""
  segs = [list(s) for s in segments]
  for i in range(len(segs) - 1):
    over = segs[i + 1][0] - segs[i][1]
    segs[i][1] = segs[i][1] + over // 2
    segs[i + 1][0] = segs[i][1] + 1
  return [tuple(s) for s in segs]


def windows_of_sequence(segments, *, max_frames: int = 200, max_segments: int = 10):
  """Chains of consecutive action segments (transitions dropped), one per start."""
  actions = [s for s in segments if s[2] != TRANSITION]
  out = []
  for i, first in enumerate(actions):
    chain = [first]
    for seg in actions[i + 1:]:
      last = chain[-1]
      if seg[0] <= last[0] or seg[1] <= last[1]:
        continue
      if seg[1] - first[0] > max_frames or len(chain) == max_segments:
        break
      chain.append(seg)
    if len(chain) > 1 or len(actions) == 1:
      out.append(chain)
  # Drop windows contained in an earlier one (same segments, later start).
  uniq, seen = [], set()
  for chain in out:
    key = tuple(chain)
    if key not in seen:
      seen.add(key)
      uniq.append(chain)
  return uniq


def read_windows(root: str, split: str, *, fps: float = 30.0, min_frames: int = 45,
                 max_frames: int = 250, window_frames: int = 200, max_segments: int = 10,
                 limit: int | None = None) -> list[Window]:
  """All training windows of a split (see the module docstring)."""
  annotations = read_annotations(root, split)
  out = []
  for sid, ann in list(annotations.items())[:limit]:
    path = os.path.join(root, 'motions', f'{sid}.npy')
    if not os.path.exists(path):
      raise FileNotFoundError(f'Babel motion not found: {path} (sequence {sid} of {split}.json)')
    motion = read_npy(path, 'the features (T, D)', ndim=2).astype(np.float32)
    segs = frame_segments(ann, fps, len(motion))
    for k, chain in enumerate(windows_of_sequence(segs, max_frames=window_frames,
                                                  max_segments=max_segments)):
      cons = make_consecutive([(s, e, t) for s, e, t in chain])
      lengths = [e - s + 1 for s, e, _ in cons]
      lengths[-1] -= 1
      start, total = cons[0][0], sum(lengths)
      if not min_frames <= total <= max_frames or min(lengths) < 1:
        continue
      out.append(Window(f'{sid}-{k}', motion[start:start + total],
                        tuple(t for _, _, t in cons), tuple(lengths)))
  if not out:
    raise ValueError(f'no Babel windows in {root}/{split}.json with length in '
                     f'[{min_frames}, {max_frames}]')
  return out
