"""MVTec 3D-AD layout: organised xyz point clouds (.tiff) and ground-truth masks (.png).

Bergmann et al., "The MVTec 3D-AD Dataset for Unsupervised 3D Anomaly Detection and
Localization", VISAPP 2022.  One folder per object class:

  <root>/<class>/train/good/xyz/000.tiff            H×W×3 float32 xyz; (0, 0, 0) = no data
  <root>/<class>/validation/good/xyz/...
  <root>/<class>/test/<defect>/xyz/000.tiff         defect = 'good' or an anomaly type
  <root>/<class>/test/<defect>/gt/000.png           H×W uint8, 255 = anomalous pixel
  (rgb/ folders exist in the real data; the 3D pipelines here do not read them)

The Coupled Laplacian anomaly benchmark (Bastico et al., CVPR 2024, Sec. 4.1) reads the
test clouds and the first `train/good` cloud as the reference.  `write_sample` writes the
same layout (used by the embedded benchmark built from real meshes).

`read_xyz` refuses (`DataFileError` naming the file) unreadable or truncated tiffs,
shapes other than H×W×3, non-float dtypes (a uint8 RGB image is not a point cloud)
NaN/Inf coordinates (missing points are (0, 0, 0) in MVTec 3D-AD) and tiffs that
declare more than `MAX_VALUES` values (checked before decoding); `read_gt`
refuses unreadable PNGs and masks of the wrong shape.
"""

from __future__ import annotations

import dataclasses
import math
import os

import numpy as np
from PIL import Image

from jaxvision.data.errors import DataFileError
from jaxvision.data.errors import check_array

MAX_VALUES = 3 * 4096 * 4096   # MVTec 3D-AD clouds are at most 800×800×3


def _tifffile():
  try:
    import tifffile  # pylint: disable=g-import-not-at-top
  except ImportError as e:
    raise ImportError('reading MVTec 3D-AD xyz .tiff files needs `pip install tifffile`') from e
  return tifffile


@dataclasses.dataclass(frozen=True)
class Sample:
  cls: str
  split: str
  defect: str
  name: str
  xyz_path: str
  gt_path: str | None   # None for good samples without a mask file


def read_xyz(path: str) -> np.ndarray:
  """(H, W, 3) float32 organised point cloud."""
  if not os.path.exists(path):
    raise FileNotFoundError(f'no xyz tiff at {path}')
  try:
    with _tifffile().TiffFile(path) as tif:
      shape = tuple(tif.series[0].shape) if tif.series else ()
      if math.prod(shape) > MAX_VALUES:   # bound the allocation before decoding
        raise DataFileError(path, f'the tiff declares shape {shape}, more than {MAX_VALUES} '
                            'values')
      xyz = np.asarray(tif.asarray())
  except DataFileError:
    raise
  except Exception as e:  # pylint: disable=broad-except  # tifffile raises many types
    raise DataFileError(path, f'not a readable tiff ({type(e).__name__}: {e})') from None
  if xyz.ndim != 3 or xyz.shape[-1] != 3:
    raise DataFileError(path, f'an organised point cloud must be H×W×3, got shape {xyz.shape}')
  if xyz.dtype.kind != 'f':
    raise DataFileError(path, f'xyz coordinates must be floats, got {xyz.dtype} (an RGB '
                        'image, not a point cloud?)')
  return check_array(xyz, path, 'xyz').astype(np.float32)


def read_gt(path: str | None, shape: tuple[int, int] | None = None) -> np.ndarray:
  """Boolean (H, W) anomaly mask; all False when `path` is None (a good sample)."""
  if path is None:
    if shape is None:
      raise ValueError('a missing ground-truth mask needs the image shape')
    return np.zeros(shape, bool)
  if not os.path.exists(path):
    raise FileNotFoundError(f'no ground-truth png at {path}')
  try:
    with Image.open(path) as img:
      gt = np.asarray(img)
  except (OSError, ValueError, SyntaxError) as e:
    raise DataFileError(path, f'not a readable mask image ({e})') from None
  if gt.ndim not in (2, 3):
    raise DataFileError(path, f'a mask must be H×W, got shape {gt.shape}')
  if gt.ndim == 3:
    gt = gt[..., 0]
  if shape is not None and gt.shape != tuple(shape):
    raise DataFileError(path, f'mask shape {gt.shape} does not match the xyz image {shape}')
  return gt > 0


def list_classes(root: str) -> list[str]:
  if not os.path.isdir(root):
    raise FileNotFoundError(f'no MVTec 3D-AD root folder at {root}')
  return sorted(d for d in os.listdir(root) if os.path.isdir(os.path.join(root, d, 'test')))


def _split_samples(root: str, cls: str, split: str) -> list[Sample]:
  base = os.path.join(root, cls, split)
  if not os.path.isdir(base):
    raise FileNotFoundError(f'MVTec 3D-AD class {cls!r} has no {split}/ folder under {root}')
  out = []
  for defect in sorted(os.listdir(base)):
    xyz_dir = os.path.join(base, defect, 'xyz')
    if not os.path.isdir(xyz_dir):
      continue
    for f in sorted(os.listdir(xyz_dir)):
      if not f.endswith(('.tiff', '.tif')):
        continue
      name = os.path.splitext(f)[0]
      gt = os.path.join(base, defect, 'gt', name + '.png')
      out.append(Sample(cls, split, defect, name, os.path.join(xyz_dir, f),
                        gt if os.path.exists(gt) else None))
  return out


def test_samples(root: str, cls: str) -> list[Sample]:
  samples = _split_samples(root, cls, 'test')
  if not samples:
    raise FileNotFoundError(f'no test xyz tiffs for class {cls!r} under {root}')
  return samples


def train_good(root: str, cls: str) -> list[Sample]:
  samples = [s for s in _split_samples(root, cls, 'train') if s.defect == 'good']
  if not samples:
    raise FileNotFoundError(f'no train/good xyz tiffs for class {cls!r} under {root}')
  return samples


def write_sample(root: str, cls: str, split: str, defect: str, name: str, xyz: np.ndarray,
                 gt: np.ndarray | None = None) -> Sample:
  """Writes one sample in the MVTec 3D-AD layout (float32 tiff, 0/255 png)."""
  xyz = np.asarray(xyz, np.float32)
  if xyz.ndim != 3 or xyz.shape[-1] != 3:
    raise ValueError(f'xyz must be H×W×3, got {xyz.shape}')
  base = os.path.join(root, cls, split, defect)
  os.makedirs(os.path.join(base, 'xyz'), exist_ok=True)
  xyz_path = os.path.join(base, 'xyz', name + '.tiff')
  _tifffile().imwrite(xyz_path, xyz, photometric='rgb')
  gt_path = None
  if gt is not None:
    if gt.shape != xyz.shape[:2]:
      raise ValueError(f'gt shape {gt.shape} does not match xyz {xyz.shape[:2]}')
    os.makedirs(os.path.join(base, 'gt'), exist_ok=True)
    gt_path = os.path.join(base, 'gt', name + '.png')
    Image.fromarray(np.where(gt, 255, 0).astype(np.uint8)).save(gt_path)
  return Sample(cls, split, defect, name, xyz_path, gt_path)
