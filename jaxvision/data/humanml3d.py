"""The HumanML3D on-disk layout (Guo et al. 2022): reader, writer, normalisation stats.

  <root>/new_joint_vecs/<id>.npy   features (T, D), D = 263 for the 22-joint SMPL body
  <root>/new_joints/<id>.npy       joint positions (T, J, 3) (optional; for viewing)
  <root>/texts/<id>.txt            one description per line:
                                   caption#word/POS word/POS ...#from_sec#to_sec
  <root>/Mean.npy, <root>/Std.npy  per-channel normalisation of the features
  <root>/{train,val,test}.txt      ids, one per line

A text line with from = to = 0 describes the whole motion; otherwise it describes the
seconds [from, to) (at `fps`, 20 for HumanML3D) and becomes its own example, as in
`Text2MotionDatasetV2`.  Motions shorter than `min_length` or at least `max_length`
frames are dropped (HumanML3D: 40 and 200), and kept examples longer than
`max_motion_length` (196) are cropped when sampled.

Bad files are refused with `DataFileError` naming the file (and text line): empty,
truncated or pickled `.npy`, NaN/Inf features or statistics, Std <= 0, a text line
without 4 fields or with an infinite, negative or reversed time range.  A time of
'nan' means 0, as upstream (`f_tag = 0.0 if np.isnan(f_tag)`).
"""

from __future__ import annotations

import dataclasses
import math
import os
from typing import Sequence

import numpy as np

from jaxvision.data.errors import DataFileError
from jaxvision.data.errors import read_npy

SPLITS = ('train', 'val', 'test')


@dataclasses.dataclass(frozen=True)
class TextLine:
  caption: str
  tokens: tuple[str, ...]      # 'lemma/POS'
  start: float = 0.0           # seconds; 0, 0 = whole motion
  end: float = 0.0

  def format(self) -> str:
    return f'{self.caption}#{" ".join(self.tokens)}#{self.start}#{self.end}'


def parse_text_line(line: str, where: str = '') -> TextLine:
  parts = line.strip().split('#')
  if len(parts) != 4:
    raise DataFileError(where, f'a HumanML3D text line has 4 #-separated fields '
                        f'(caption#tokens#from#to), got {len(parts)}: {line.strip()[:80]!r}')
  caption, tokens, start, end = parts
  try:
    start, end = float(start), float(end)
  except ValueError:
    raise DataFileError(where, f'the times {parts[2]!r}, {parts[3]!r} are not numbers') from None
  start = 0.0 if math.isnan(start) else start
  end = 0.0 if math.isnan(end) else end
  if not (math.isfinite(start) and math.isfinite(end)) or start < 0 or end < start:
    raise DataFileError(where, f'the time range [{start}, {end}) is not finite, '
                        'non-negative and ordered')
  return TextLine(caption, tuple(tokens.split(' ')) if tokens else (), start, end)


@dataclasses.dataclass(frozen=True)
class Example:
  name: str
  motion: np.ndarray               # (T, D), not normalised
  texts: tuple[TextLine, ...]


def read_split(root: str, split: str) -> list[str]:
  path = os.path.join(root, f'{split}.txt')
  if not os.path.exists(path):
    raise FileNotFoundError(f'HumanML3D split file not found: {path}')
  with open(path) as f:
    return [line.strip() for line in f if line.strip()]


def read_texts(root: str, name: str) -> list[TextLine]:
  path = os.path.join(root, 'texts', f'{name}.txt')
  if not os.path.exists(path):
    raise FileNotFoundError(f'HumanML3D text file not found: {path}')
  with open(path) as f:
    return [parse_text_line(line, f'{path}:{i + 1}') for i, line in enumerate(f) if line.strip()]


def read_stats(root: str) -> tuple[np.ndarray, np.ndarray]:
  paths = [os.path.join(root, n) for n in ('Mean.npy', 'Std.npy')]
  for p in paths:
    if not os.path.exists(p):
      raise FileNotFoundError(f'HumanML3D normalisation file not found: {p}')
  mean, std = (read_npy(p, 'the statistics', ndim=1, nonempty=True).astype(np.float32)
               for p in paths)
  if mean.shape != std.shape:
    raise DataFileError(paths[1], f'Std {std.shape} does not match {paths[0]} {mean.shape}')
  if np.any(std <= 0):
    raise DataFileError(paths[1], f'{int(np.sum(std <= 0))} entries are <= 0, the first '
                        f'at channel {int(np.argmax(std <= 0))}')
  return mean, std


def read_examples(root: str, split: str, *, fps: float = 20.0, min_length: int = 40,
                  max_length: int = 200, limit: int | None = None) -> list[Example]:
  """One `Example` per whole motion (its whole-motion texts) and per sub-range text."""
  out = []
  for name in read_split(root, split)[:limit]:
    path = os.path.join(root, 'new_joint_vecs', f'{name}.npy')
    if not os.path.exists(path):
      raise FileNotFoundError(f'HumanML3D motion not found: {path} (listed in {split}.txt)')
    motion = read_npy(path, 'the features (T, D)', ndim=2).astype(np.float32)
    if not min_length <= len(motion) < max_length:
      continue
    whole = []
    for line in read_texts(root, name):
      if line.start == 0.0 and line.end == 0.0:
        whole.append(line)
        continue
      sub = motion[int(line.start * fps):int(line.end * fps)]
      if min_length <= len(sub) < max_length:
        out.append(Example(f'{name}@{line.start}-{line.end}', sub, (line,)))
    if whole:
      out.append(Example(name, motion, tuple(whole)))
  if not out:
    raise ValueError(f'no {split} examples in {root} with length in [{min_length}, {max_length})')
  return out


def normalization_stats(motions: Sequence[np.ndarray], num_joints: int):
  """Mean and Std as HumanML3D's `cal_mean_variance`: Std averaged within each block."""
  data = np.concatenate([np.asarray(m, np.float64) for m in motions], axis=0)
  mean, std = data.mean(axis=0), data.std(axis=0)
  j = num_joints
  edges = [0, 1, 3, 4, 4 + (j - 1) * 3, 4 + (j - 1) * 9, 4 + (j - 1) * 9 + j * 3, data.shape[1]]
  if edges[-1] != 8 + (j - 1) * 9 + j * 3:
    raise ValueError(f'{data.shape[1]} channels do not match {j} joints')
  for a, b in zip(edges[:-1], edges[1:]):
    std[a:b] = std[a:b].mean()
  std = np.where(std > 0, std, 1.0)
  return mean.astype(np.float32), std.astype(np.float32)


def write_layout(root: str, motions: dict[str, np.ndarray], texts: dict[str, list[TextLine]],
                 splits: dict[str, Sequence[str]], *, mean: np.ndarray, std: np.ndarray,
                 joints: dict[str, np.ndarray] | None = None) -> None:
  """Writes a dataset in the HumanML3D layout (atomically per file)."""
  for sub in ('new_joint_vecs', 'texts') + (('new_joints',) if joints else ()):
    os.makedirs(os.path.join(root, sub), exist_ok=True)

  def save_npy(path, value):
    tmp = path + '.tmp.npy'
    np.save(tmp, np.asarray(value, np.float32))
    os.replace(tmp, path)

  def save_text(path, text):
    with open(path + '.tmp', 'w') as f:
      f.write(text)
    os.replace(path + '.tmp', path)

  for name, motion in motions.items():
    save_npy(os.path.join(root, 'new_joint_vecs', f'{name}.npy'), motion)
    save_text(os.path.join(root, 'texts', f'{name}.txt'),
              ''.join(t.format() + '\n' for t in texts[name]))
    if joints:
      save_npy(os.path.join(root, 'new_joints', f'{name}.npy'), joints[name])
  save_npy(os.path.join(root, 'Mean.npy'), mean)
  save_npy(os.path.join(root, 'Std.npy'), std)
  for split, names in splits.items():
    save_text(os.path.join(root, f'{split}.txt'), ''.join(n + '\n' for n in names))
