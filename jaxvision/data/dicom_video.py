"""Ultrasound DICOM cines and stills as uint8 RGB frame stacks (FocusMAE's embedded video).

FocusMAE (Basu et al., CVPR 2024, Sec. 4 "Dataset") pre-trains a video MAE on
ultrasound clips. Ultrasound scanners store clips as multi-frame DICOM objects
(PS3.3 C.7.6.6 Multi-frame module, C.8.5.6 US Multi-frame Image module); the one real
clip available offline is the echocardiography cine that the `pydicom-data` wheel ships
(`color3d_jpeg_baseline.dcm`: 120 frames, 480 x 640, YBR_FULL_422, JPEG baseline,
FrameTime 33.3 ms). `read_dicom_video` returns any such object, multi-frame or single
still, as `(T, H, W, 3)` uint8 RGB plus its frame rate:

* MONOCHROME2 is replicated to three channels, MONOCHROME1 is inverted first;
* PALETTE COLOR goes through its lookup table (16-bit tables scaled to 8 bits);
* YBR_* photometric data is converted to RGB by pydicom (`as_rgb`);
* samples stored with other than 8 bits are scaled from [0, 2**BitsStored - 1] to
  [0, 255] (signed samples shifted by 2**(BitsStored - 1) first).

JPEG baseline / lossless frames decode through Pillow (a jaxvision dependency), so the
embedded cine reads offline without pylibjpeg or GDCM. Frames are decoded one at a time
(`frames=` picks a subset), so a 16-frame clip never decodes the whole cine.

Every file the reader cannot use is refused with `DataFileError('<path>: <problem>')`:
not DICOM, no pixel data, a header whose declared frame count / sizes disagree with the
pixel data, more decoded bytes than `max_bytes`, an unsupported photometric
interpretation, or frames the decoder rejects (truncated JPEG, missing plugin).
"""

from __future__ import annotations

import dataclasses
import math
import os
from typing import Any, Optional, Sequence

import numpy as np

from jaxvision.data.errors import DataFileError, require_file
from jaxvision.data.packaged import packaged_file

# pydicom-data's real ultrasound objects (relative to the `data_store` package).
EMBEDDED = {
    'echo_cine': 'data/color3d_jpeg_baseline.dcm',   # 120-frame echocardiography clip
    'us_rgb': 'data/US1_UNCR.dcm',                    # RGB still, 480 x 640
    'us_palette': 'data/OBXXXX1A.dcm',                # palette-colour obstetric still
    'us_palette16': 'data/gdcm-US-ALOKA-16.dcm',      # 16-bit palette still (ALOKA)
}

_PHOTOMETRIC = ('MONOCHROME1', 'MONOCHROME2', 'RGB', 'PALETTE COLOR', 'YBR_FULL',
                'YBR_FULL_422', 'YBR_ICT', 'YBR_RCT', 'YBR_PARTIAL_420')
DEFAULT_MAX_BYTES = 4 << 30   # decoded uint8 RGB frames the reader may return


@dataclasses.dataclass(frozen=True)
class DicomVideoInfo:
  """What the header says: frames in the file, frame size, rate (None if not stored)."""
  num_frames: int
  height: int
  width: int
  fps: Optional[float]
  photometric: str
  modality: str
  transfer_syntax: str


def embedded_path(name: str = 'echo_cine') -> str:
  """Path of one of pydicom-data's ultrasound objects (`EMBEDDED` keys)."""
  if name not in EMBEDDED:
    raise KeyError(f'unknown embedded DICOM {name!r}; known: {sorted(EMBEDDED)}')
  return packaged_file('data_store', EMBEDDED[name], pip_name='pydicom-data')


def _pydicom():
  try:
    import pydicom  # pylint: disable=g-import-not-at-top
  except ImportError as e:
    raise ImportError('reading DICOM needs pydicom: `pip install pydicom`') from e
  return pydicom


def _fps(ds) -> Optional[float]:
  """Frame rate from FrameTime (ms), else CineRate, else RecommendedDisplayFrameRate."""
  frame_time = ds.get('FrameTime')
  try:
    if frame_time is not None and float(frame_time) > 0:
      return 1000.0 / float(frame_time)
    for key in ('CineRate', 'RecommendedDisplayFrameRate'):
      value = ds.get(key)
      if value is not None and float(value) > 0:
        return float(value)
  except (TypeError, ValueError):
    return None
  return None


def _int_attr(ds, key: str, path: Any, default: Optional[int] = None) -> int:
  value = ds.get(key, default)
  try:
    value = int(value)
  except (TypeError, ValueError):
    raise DataFileError(path, f'{key} is missing or not an integer ({value!r})') from None
  return value


def _open(path: Any):
  pydicom = _pydicom()
  require_file(path, 'DICOM file')
  try:
    ds = pydicom.dcmread(path)
  except pydicom.errors.InvalidDicomError as e:
    raise DataFileError(path, f'not a DICOM file ({e})') from None
  except Exception as e:  # pylint: disable=broad-except  # truncated headers raise many types
    raise DataFileError(path, f'unreadable DICOM header ({type(e).__name__}: {e})') from None
  if 'PixelData' not in ds:
    raise DataFileError(path, 'has no pixel data (PixelData element absent)')
  return ds


def _info(ds, path: Any) -> DicomVideoInfo:
  rows, cols = _int_attr(ds, 'Rows', path), _int_attr(ds, 'Columns', path)
  frames = _int_attr(ds, 'NumberOfFrames', path, default=1)
  spp = _int_attr(ds, 'SamplesPerPixel', path, default=1)
  bits = _int_attr(ds, 'BitsAllocated', path)
  if min(rows, cols, frames) < 1:
    raise DataFileError(path, f'declares {frames} frames of {rows} x {cols} pixels')
  if spp not in (1, 3) or bits not in (1, 8, 16, 32):
    raise DataFileError(path, f'unsupported sample layout: SamplesPerPixel {spp}, '
                        f'BitsAllocated {bits}')
  photometric = str(ds.get('PhotometricInterpretation', ''))
  if photometric not in _PHOTOMETRIC:
    raise DataFileError(path, f'unsupported PhotometricInterpretation {photometric!r}')
  syntax = ds.file_meta.get('TransferSyntaxUID')
  if syntax is not None and not syntax.is_compressed:
    need = math.ceil(rows * cols * spp * frames * bits / 8)
    have = len(ds.PixelData)
    if have < need:
      raise DataFileError(path, f'the header declares {frames} frames of {rows} x {cols} x '
                          f'{spp} at {bits} bits ({need} bytes) but PixelData holds {have} '
                          'bytes (truncated)')
  return DicomVideoInfo(frames, rows, cols, _fps(ds), photometric,
                        str(ds.get('Modality', '')), str(syntax or ''))


def read_dicom_info(path: Any) -> DicomVideoInfo:
  """The header of a DICOM image/cine (no pixel decoding); refuses bad files by name."""
  return _info(_open(path), path)


def _to_rgb8(frame: np.ndarray, ds, info: DicomVideoInfo) -> np.ndarray:
  """One decoded frame (H, W[, 3]) -> (H, W, 3) uint8 RGB."""
  from pydicom.pixels import apply_color_lut  # pylint: disable=g-import-not-at-top
  if info.photometric == 'PALETTE COLOR':
    rgb = apply_color_lut(frame, ds)
    # The descriptor's third value is the bits per LUT entry (PS3.3 C.7.6.3.1.5).
    lut_bits = int(ds.RedPaletteColorLookupTableDescriptor[2])
    return (rgb >> (lut_bits - 8)).astype(np.uint8) if lut_bits > 8 else rgb.astype(np.uint8)
  stored = int(ds.get('BitsStored', 8 * frame.dtype.itemsize))
  if frame.dtype.kind == 'f' or frame.dtype.kind not in 'iu':
    raise ValueError(f'decoded samples of dtype {frame.dtype}')
  x = frame.astype(np.int64)
  if frame.dtype.kind == 'i':   # signed samples: shift [-2^(s-1), 2^(s-1)) to [0, 2^s)
    x = x + 2 ** (stored - 1)
  if stored != 8 or frame.dtype.itemsize > 1:
    x = (x * 255) // max(2 ** stored - 1, 1)
  x = np.clip(x, 0, 255).astype(np.uint8)
  if info.photometric == 'MONOCHROME1':
    x = 255 - x
  if x.ndim == 2:
    x = np.repeat(x[..., None], 3, axis=-1)
  return x


def read_dicom_video(path: Any, frames: Optional[Sequence[int]] = None, *,
                     max_bytes: int = DEFAULT_MAX_BYTES,
                     min_frames: int = 1) -> tuple[np.ndarray, DicomVideoInfo]:
  """`(video (T, H, W, 3) uint8 RGB, info)` of a DICOM cine or still.

  frames: indices into the file's frames (default all, in order); each must lie in
  [0, num_frames). min_frames: refuse files with fewer frames (2 to require a cine).
  """
  ds = _open(path)
  info = _info(ds, path)
  if info.num_frames < min_frames:
    raise DataFileError(path, f'holds {info.num_frames} frame(s); at least {min_frames} '
                        'are needed (a cine, not a still)')
  index = list(range(info.num_frames)) if frames is None else [int(i) for i in frames]
  bad = [i for i in index if not 0 <= i < info.num_frames]
  if bad:
    raise IndexError(f'{os.fspath(path)}: frame indices {bad[:5]} outside '
                     f'[0, {info.num_frames})')
  need = len(index) * info.height * info.width * 3
  if need > max_bytes:
    raise DataFileError(path, f'{len(index)} frames of {info.height} x {info.width} RGB '
                        f'need {need} bytes, over max_bytes={max_bytes}')
  from pydicom.pixels import pixel_array  # pylint: disable=g-import-not-at-top
  out = np.empty((len(index), info.height, info.width, 3), np.uint8)
  for k, i in enumerate(index):
    try:
      frame = pixel_array(ds, index=i if info.num_frames > 1 else None)
      out[k] = _to_rgb8(np.asarray(frame), ds, info)
    except Exception as e:  # pylint: disable=broad-except  # decoders raise many types
      raise DataFileError(path, f'frame {i} cannot be decoded ({type(e).__name__}: {e})'
                          ) from None
  return out, info
