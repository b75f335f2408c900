"""FocusMAE pre-training clips from a real ultrasound DICOM cine (the embedded data).

Basu et al., CVPR 2024, Sec. 4 (implementation details): clips of 16 frames taken every
`sampling_rate` (3) frames, resized to 224^2, pre-trained with the MAE objective. Offline
the only real ultrasound video is pydicom-data's echocardiography cine (120 frames,
480 x 640, `jaxvision.data.dicom_video.embedded_path('echo_cine')`). `CineClips` is a
random-access source of all windows of `frames` frames (stride `clip_stride`) of one
cine, each resized (bilinear, Pillow) to `image_size`, as float32 RGB in [0, 1], with
the candidate boxes of the clip's first frame (upstream's `representative_frame=0`)
from an upstream detector JSON (`boxes.read_box_json`, `box_json=`; video name = the
DICOM file's stem), rescaled from the cine's frame size to `image_size`. Without a JSON
(the embedded cine has no detector output) no box is valid and the focus prior falls
back to upstream's central box.
"""

from __future__ import annotations

import functools
import os

import numpy as np
from PIL import Image

from jaxvision.data import dicom_video
from jaxvision.projects.focusmae import boxes as boxes_lib


@functools.lru_cache(maxsize=4)
def load_cine(path: str, image_size: tuple[int, int], max_frames: int) -> np.ndarray:
  """(T, H, W, 3) float32 in [0, 1]: the first `max_frames` frames (0 = all), resized."""
  info = dicom_video.read_dicom_info(path)
  n = info.num_frames if max_frames <= 0 else min(max_frames, info.num_frames)
  video, _ = dicom_video.read_dicom_video(path, frames=range(n), min_frames=2)
  h, w = image_size
  out = np.stack([np.asarray(Image.fromarray(f).resize((w, h), Image.BILINEAR)) for f in video])
  out = out.astype(np.float32) / 255.0
  out.setflags(write=False)
  return out


class CineClips:
  """Windows of `frames` frames, `sampling_rate` apart, every `clip_stride` frames."""

  def __init__(self, path: str, *, frames: int, sampling_rate: int, image_size, clip_stride: int,
               max_frames: int = 0, max_boxes: int = 1, num_clips: int = 0,
               box_json: str = '', min_score: float = 0.25):
    self.video = load_cine(path, tuple(int(s) for s in image_size), int(max_frames))
    info = dicom_video.read_dicom_info(path)
    self.scale = (image_size[1] / info.width, image_size[0] / info.height)   # (sx, sy)
    self.name = os.path.splitext(os.path.basename(path))[0]
    self.table = boxes_lib.read_box_json(box_json, min_score) if box_json else {}
    span = (frames - 1) * sampling_rate + 1
    if span > len(self.video):
      raise ValueError(f'{path}: a clip of {frames} frames at sampling rate {sampling_rate} '
                       f'spans {span} frames but {len(self.video)} are read')
    self.starts = list(range(0, len(self.video) - span + 1, max(int(clip_stride), 1)))
    if num_clips > 0:
      self.starts = self.starts[:num_clips]
    self.frames, self.rate, self.max_boxes = frames, sampling_rate, max_boxes

  def __len__(self) -> int:
    return len(self.starts)

  def __getitem__(self, i: int) -> dict[str, np.ndarray]:
    s = self.starts[i]
    clip = self.video[s:s + (self.frames - 1) * self.rate + 1:self.rate]
    boxes, valid = boxes_lib.frame_boxes(self.table, self.name, s, self.max_boxes, self.scale)
    return {'video': np.array(clip, np.float32), 'boxes': boxes, 'box_valid': valid}
