"""Babel-style multi-segment motion sequences (Punnakkal et al. 2021; FlowMDM's loader).

BABEL annotates AMASS sequences with frame-level action segments.  The annotation file
`<root>/<split>.json` is BABEL's own format:

  {babel_sid: {"babel_sid": ..., "dur": seconds,
               "frame_ann": {"labels": [{"proc_label": "walk", "start_t": 0.0,
                                         "end_t": 2.1}, ...]} | null,
               "seq_ann": {"labels": [{"proc_label": ...}]}}}

and the motion of each sequence is either a feature array `<root>/motions/<babel_sid>.npy`
(T, D) at `fps` (any representation; windows are sliced out of it: `features='sequence'`)
or, as upstream, the AMASS SMPL-H fit `<root>/motions/<babel_sid>.npz` (`poses` (T, 156)
axis-angle, `trans` (T, 3), at `fps`, 30 for BABEL) from which each window's 135-d
features are computed on the window alone (`features='window'`, `window_features`: the
heading of the window's first frame removed and its first root velocity 0, as upstream's
Globalvelandy transform applied per window).  Sequences without frame labels are skipped,
as in FlowMDM.

FlowMDM trains on windows of linked segments (upstream `babel_flowmdm.py`,
`extract_frame_labels`; `upstream_windows` here).  Labels become frame segments
(int(t * fps), clipped to the motion) with upstream's spelling fixes (`fix_spelling`);
segment b FOLLOWS a when it starts inside (a.start, a.end] and ends after a.end.  From
every segment, chains grow along `follows` through every branch: an action extends the
chain with each following non-transition segment (through a following transition when
only transitions follow it); a 'transition' that does not start at frame 0 and has
segments on both sides links each segment before it to each after it and is not a
condition of its own, while a frame-0 transition (or one with nothing before it) stays
in the window as the text 'transition'.  A chain stops when the next segment would end
more than `window_frames` (200) after the chain's start, is cut to 10 segments, and
duplicates are dropped (first kept).  A segment with nothing linked to it gives no
window; a single-segment window arises only when the first link already overflows, and a
lone 'transition' window is dropped, as upstream.  The segments of a window are then made
consecutive, each gap or overlap split half and half between neighbours
(`make_consecutive`, upstream's `process_actions`), and windows whose total length is
outside [min_frames, max_frames] are dropped (FlowMDM: 45 and 250 frames).  Windows are
named `<babel_sid>-<k>`, k their index in upstream's list.

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
from jaxvision.data.errors import check_array
from jaxvision.data.errors import read_npy
from jaxvision.data.errors import read_npz
from jaxvision.data import babel_spelling

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


def fix_spelling(label: str) -> str:
  """Upstream's `fix_spell`: whole-word corrections of a stripped, re-spaced label."""
  return ' '.join(babel_spelling.SPELLING.get(w, w) for w in str(label).split())


def frame_segments(annotation: dict, fps: float, num_frames: int):
  """(start, end, label) frame segments of one sequence in file order, as upstream: start
  int(start_t * fps), end min(num_frames, int(end_t * fps)), spelling fixed; [] without
  frame labels."""
  frame_ann = annotation.get('frame_ann')
  if not frame_ann:
    return []
  return [(int(label['start_t'] * fps), min(num_frames, int(label['end_t'] * fps)),
           fix_spelling(label['proc_label'])) for label in frame_ann.get('labels', [])]


def make_consecutive(segments):
  """FlowMDM's `process_actions`: split each gap/overlap between neighbours (inclusive ends)."""
  segs = [list(s) for s in segments]
  for i in range(len(segs) - 1):
    over = segs[i + 1][0] - segs[i][1]
    segs[i][1] = segs[i][1] + over // 2
    segs[i + 1][0] = segs[i][1] + 1
  return [tuple(s) for s in segs]


def _follows(a, b) -> bool:
  """b starts inside (a.start, a.end] and ends after a.end (upstream's 'after')."""
  return a[0] < b[0] <= a[1] < b[1]


def upstream_windows(segments, *, max_frames: int = 200, max_segments: int = 10):
  """FlowMDM's training windows of one sequence (see the module docstring).

  segments: (start, end, label) in file order.  Returns lists of (start, end, label),
  each sorted by start, in upstream's order.
  """
  # Sorted by interval, then file order; a repeated interval keeps its LAST label.
  label = {}
  for i in sorted(range(len(segments)), key=lambda i: (segments[i][:2], i)):
    label[tuple(segments[i][:2])] = segments[i][2]
  nodes = list(label)
  after = {a: [b for b in nodes if _follows(a, b)] for a in nodes}
  before = {b: [a for a in nodes if _follows(a, b)] for b in nodes}

  def grow(node, chain):
    nxt, prv = after[node], before[node]
    if label[node] == TRANSITION and node[0] != 0 and nxt and prv:
      # A linking transition: (each segment before it) -> (each segment after it).
      starts = [list(chain) + [b] for b in nxt] if chain else [[a, b] for a in prv for b in nxt]
    else:
      actions = [b for b in nxt if label[b] != TRANSITION]
      if actions:
        starts = [(list(chain) if chain else [node]) + [b] for b in actions]
      elif chain and nxt:                  # only transitions follow: go through them
        return [w for t in nxt for w in grow(t, chain)]
      else:
        return [chain] if chain else []
    out = []
    for c in starts:
      if c[-1][1] - c[0][0] > max_frames:
        out.append(c[:-1])                 # the last link overflows the window
      else:
        out += grow(c[-1], c)
    return out

  windows, seen = [], set()
  for node in nodes:
    for w in grow(node, []):
      key = tuple(w[:max_segments])
      if key not in seen:
        seen.add(key)
        windows.append(list(key))
  return [[(s, e, label[(s, e)]) for s, e in w] for w in windows]


SMPL_BODY_POSE_DIMS = 66   # 22 body joints x axis-angle (SMPL-H's first 66 pose values)


def _read_smpl(path: str):
  """`poses` (T, >= 66 axis-angle) and `trans` (T, 3) of an AMASS-style .npz at 30 fps."""
  data = read_npz(path)
  missing = [k for k in ('poses', 'trans') if k not in data]
  if missing:
    raise DataFileError(path, f'missing arrays {missing} (has {sorted(data)})')
  poses = check_array(data['poses'], path, 'poses (T, >= 66 axis-angle)', ndim=2)
  trans = check_array(data['trans'], path, 'trans (T, 3)', ndim=2)
  if poses.shape[1] < SMPL_BODY_POSE_DIMS or trans.shape != (len(poses), 3):
    raise DataFileError(path, f'expected poses (T, >= 66) and trans (T, 3), got '
                        f'{poses.shape} and {trans.shape}')
  return poses, trans


def read_windows(root: str, split: str, *, fps: float = 30.0, min_frames: int = 45,
                 max_frames: int = 250, window_frames: int = 200, max_segments: int = 10,
                 features: str = 'sequence', featurize=None,
                 limit: int | None = None) -> list[Window]:
  """All training windows of a split (see the module docstring).

  features: 'sequence' reads `motions/<sid>.npy` (T, D) features and slices each window
  out of them (any representation; for the 135-d ones the heading is that of the
  sequence's first frame); 'window' reads `motions/<sid>.npz` (AMASS `poses`, `trans` at
  `fps`) and computes each window's features on the window alone, as upstream, with
  `featurize(poses, trans, start, stop) -> (stop - start, D)` (FlowMDM's 135-d features:
  `jaxvision.projects.flowmdm.smpl_features.window_features`).
  """
  if features not in ('sequence', 'window'):
    raise ValueError(f"features={features!r}; use 'sequence' or 'window'")
  if features == 'window' and featurize is None:
    raise ValueError("features='window' needs featurize(poses, trans, start, stop)")
  annotations = read_annotations(root, split)
  out = []
  for sid, ann in list(annotations.items())[:limit]:
    if not ann.get('frame_ann'):
      continue
    ext = '.npy' if features == 'sequence' else '.npz'
    path = os.path.join(root, 'motions', f'{sid}{ext}')
    if not os.path.exists(path):
      raise FileNotFoundError(f'Babel motion not found: {path} (sequence {sid} of {split}.json)')
    if features == 'sequence':
      motion = read_npy(path, 'the features (T, D)', ndim=2).astype(np.float32)
      num_frames = len(motion)
    else:
      poses, trans = _read_smpl(path)
      num_frames = len(poses)
    segs = frame_segments(ann, fps, num_frames)
    for k, chain in enumerate(upstream_windows(segs, max_frames=window_frames,
                                               max_segments=max_segments)):
      if len(chain) == 1 and chain[0][2] == TRANSITION:
        continue
      cons = make_consecutive(chain)
      lengths = [e - s + 1 for s, e, _ in cons]
      lengths[-1] -= 1
      start, total = cons[0][0], sum(lengths)
      if not min_frames <= total <= max_frames or min(lengths) < 0:
        continue
      feats = (motion[start:start + total] if features == 'sequence'
               else featurize(poses, trans, start, start + total))
      out.append(Window(f'{sid}-{k}', feats, tuple(t for _, _, t in cons), tuple(lengths)))
  if not out:
    raise ValueError(f'no Babel windows in {root}/{split}.json with length in '
                     f'[{min_frames}, {max_frames}]')
  return out
