"""Peak Jerk (PJ) and Area Under the Jerk (AUJ): FlowMDM's smoothness metrics (Sec. 5).

As FlowMDM's `calculate_jerk` and `evaluate_jerk`:

1. joint positions P (B, N, J, 3), time step one frame;
2. jerk = third finite difference along time, (B, N-3, J, 3); the frames at and after
   `length - 3` of each sample are zeroed (they would mix in padding);
3. per frame, the L1 norm over xyz, then the max over joints: (B, N-3);
4. the jerk curve is the mean over samples (zeroed frames included): (N-3,);
5. PJ = max of the curve; AUJ = sum over frames of |curve - GT_jerk|, where GT_jerk is
   a constant "extracted from the ground truth" (0.033031363 for HumanML3D at 20 fps,
   0.016383045 for Babel at 30 fps, hard-coded upstream).

The samples are windows of `L_tr` frames centred on each transition,
[mid - L_tr // 2, mid + L_tr - L_tr // 2) (`transition_windows`); L_tr is 60 for
HumanML3D and 30 for Babel.  Upstream, a sample shorter than 3 frames hits a negative
slice (it zeroes the curve's last frames instead); here such a sample is all zeros.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

GT_JERK_HUMANML3D = 0.033031363
GT_JERK_BABEL = 0.016383045


def frame_jerk(positions, lengths) -> np.ndarray:
  """(B, N-3) max-over-joints L1 jerk per frame; zero from `length - 3` on."""
  positions = np.asarray(positions, dtype=np.float64)
  if positions.ndim != 4 or positions.shape[-1] != 3:
    raise ValueError(f'positions must be (batch, frames, joints, 3), got {positions.shape}')
  if positions.shape[1] < 4:
    raise ValueError(f'jerk needs at least 4 frames, got {positions.shape[1]}')
  if not np.all(np.isfinite(positions)):
    raise ValueError('positions contain NaN or inf')
  lengths = np.asarray(lengths, dtype=np.int64).reshape(-1)
  if len(lengths) != len(positions):
    raise ValueError(f'{len(lengths)} lengths for {len(positions)} sequences')
  jerk = np.diff(positions, n=3, axis=1)
  valid = np.arange(jerk.shape[1])[None, :] < (lengths[:, None] - 3)
  per_frame = np.max(np.sum(np.abs(jerk), axis=-1), axis=-1)
  return np.where(valid, per_frame, 0.0)


def jerk_curve(positions, lengths) -> np.ndarray:
  """(N-3,) jerk per frame, averaged over the sequences (upstream's `seq_jerks`)."""
  return frame_jerk(positions, lengths).mean(axis=0)


def peak_jerk(curve) -> float:
  return float(np.max(np.asarray(curve)))


def area_under_jerk(curve, gt_jerk: float) -> float:
  return float(np.sum(np.abs(np.asarray(curve, dtype=np.float64) - gt_jerk)))


def transition_windows(sequence, segment_lengths: Sequence[int], transition_length: int):
  """Windows (S-1, L_tr, ...) of `sequence` (T, ...) centred on each segment boundary."""
  sequence = np.asarray(sequence)
  left = transition_length // 2
  right = transition_length - left
  bounds = np.cumsum(segment_lengths)[:-1]
  out = []
  for mid in bounds:
    if mid - left < 0 or mid + right > len(sequence):
      raise ValueError(f'a transition window of {transition_length} frames around frame {mid} '
                       f'does not fit in a sequence of {len(sequence)} frames')
    out.append(sequence[mid - left:mid + right])
  if not out:
    return np.zeros((0, transition_length) + sequence.shape[1:], sequence.dtype)
  return np.stack(out)
