"""jaxvision.data.dicom_video on pydicom-data's real ultrasound objects, and its refusals."""

import io

import numpy as np
import pytest

pydicom = pytest.importorskip('pydicom')
from PIL import Image  # pylint: disable=g-import-not-at-top

from jaxvision.data import dicom_video
from jaxvision.data.errors import DataFileError
from refusals import refused


@pytest.fixture(scope='module')
def cine_path():
  try:
    return dicom_video.embedded_path('echo_cine')
  except FileNotFoundError as e:
    pytest.skip(str(e))


def test_cine_header(cine_path):
  info = dicom_video.read_dicom_info(cine_path)
  assert (info.num_frames, info.height, info.width) == (120, 480, 640)
  assert info.modality == 'US' and info.photometric == 'YBR_FULL_422'
  assert info.fps == pytest.approx(30.0, abs=1e-3)   # FrameTime 33.333 ms


def test_cine_frames_match_an_independent_jpeg_decode(cine_path):
  """Frames equal Pillow's decode of the encapsulated JPEG fragments, read by hand."""
  idx = [0, 47, 119]
  video, _ = dicom_video.read_dicom_video(cine_path, frames=idx)
  assert video.shape == (3, 480, 640, 3) and video.dtype == np.uint8
  ds = pydicom.dcmread(cine_path)
  frames = list(pydicom.encaps.generate_frames(ds.PixelData, number_of_frames=120))
  for k, i in enumerate(idx):
    ref = np.asarray(Image.open(io.BytesIO(frames[i])).convert('RGB'))
    assert np.abs(video[k].astype(int) - ref).max() <= 1
  # An echocardiogram: grey-scale B-mode (R ~ G ~ B) on a dark background, and it moves.
  assert np.abs(video[..., 0].astype(int) - video[..., 2]).mean() < 2
  assert 2 < video.mean() < 60
  assert np.abs(video[0].astype(int) - video[1]).mean() > 1


def test_frame_subset_equals_full_decode_order(cine_path):
  a, _ = dicom_video.read_dicom_video(cine_path, frames=[5, 3])
  b, _ = dicom_video.read_dicom_video(cine_path, frames=[3])
  np.testing.assert_array_equal(a[1], b[0])
  assert not np.array_equal(a[0], a[1])


@pytest.mark.parametrize('name,shape', [('us_rgb', (480, 640)), ('us_palette', (600, 800)),
                                        ('us_palette16', (480, 640))])
def test_stills(name, shape):
  path = dicom_video.embedded_path(name)
  video, info = dicom_video.read_dicom_video(path)
  assert video.shape == (1, *shape, 3) and info.num_frames == 1
  ds = pydicom.dcmread(path)
  if info.photometric == 'RGB':
    np.testing.assert_array_equal(video[0], ds.pixel_array)
  else:   # palette: the LUT applied by hand (numpy), 16-bit entries scaled to 8 bits
    bits = int(ds.RedPaletteColorLookupTableDescriptor[2])
    first = int(ds.RedPaletteColorLookupTableDescriptor[1])
    if 'RedPaletteColorLookupTableData' not in ds:   # segmented LUT (ALOKA): pydicom's
      ref = pydicom.pixels.apply_color_lut(ds.pixel_array, ds).astype(int) >> (bits - 8)
      np.testing.assert_array_equal(video[0], ref)
      return
    dt = np.dtype('<u2') if bits == 16 else np.uint8
    luts = [np.frombuffer(ds[f'{c}PaletteColorLookupTableData'].value, dt)
            for c in ('Red', 'Green', 'Blue')]
    if len(luts[0]) != int(ds.RedPaletteColorLookupTableDescriptor[0] or 65536):
      pytest.skip('segmented or odd-length LUT')
    px = np.clip(ds.pixel_array.astype(int) - first, 0, len(luts[0]) - 1)
    ref = np.stack([lut[px] for lut in luts], -1).astype(int)
    if bits == 16:
      ref = ref >> 8
    np.testing.assert_array_equal(video[0], ref)


def test_refusals(tmp_path, cine_path):
  text = tmp_path / 'notes.dcm'
  text.write_text('not a dicom file at all' * 20)
  with refused(text, 'not a DICOM'):
    dicom_video.read_dicom_video(text)

  with pytest.raises(FileNotFoundError, match='missing.dcm'):
    dicom_video.read_dicom_video(tmp_path / 'missing.dcm')

  still = dicom_video.embedded_path('us_rgb')
  with refused(still, 'at least 2'):
    dicom_video.read_dicom_video(still, min_frames=2)
  with pytest.raises(IndexError, match='120'):
    dicom_video.read_dicom_video(cine_path, frames=[0, 120])
  with refused(cine_path, 'max_bytes'):
    dicom_video.read_dicom_video(cine_path, max_bytes=10 * 480 * 640 * 3)

  ds = pydicom.dcmread(still)
  del ds.PixelData
  nopix = tmp_path / 'nopix.dcm'
  ds.save_as(nopix)
  with refused(nopix, 'no pixel data'):
    dicom_video.read_dicom_video(nopix)

  ds = pydicom.dcmread(still)
  ds.NumberOfFrames = 4          # claims 4 frames, holds one
  lying = tmp_path / 'lying.dcm'
  ds.save_as(lying)
  with refused(lying, 'truncated'):
    dicom_video.read_dicom_video(lying)

  ds = pydicom.dcmread(still)
  ds.PhotometricInterpretation = 'HSV'
  hsv = tmp_path / 'hsv.dcm'
  ds.save_as(hsv)
  with refused(hsv, 'PhotometricInterpretation'):
    dicom_video.read_dicom_video(hsv)


def test_truncated_cine_refused(tmp_path, cine_path):
  raw = open(cine_path, 'rb').read()
  cut = tmp_path / 'cut.dcm'
  cut.write_bytes(raw[: len(raw) // 2])
  with refused(cut):
    video, _ = dicom_video.read_dicom_video(cut, frames=[119])


def test_corrupt_jpeg_frame_refused(tmp_path, cine_path):
  ds = pydicom.dcmread(cine_path)
  frames = list(pydicom.encaps.generate_frames(ds.PixelData, number_of_frames=120))
  frames[1] = frames[1][:40]                       # a JPEG frame cut to its first bytes
  ds.PixelData = pydicom.encaps.encapsulate(frames[:2])
  ds.NumberOfFrames = 2
  bad = tmp_path / 'badjpeg.dcm'
  ds.save_as(bad)
  video, _ = dicom_video.read_dicom_video(bad, frames=[0])
  assert video.shape == (1, 480, 640, 3)
  with refused(bad, 'frame 1'):
    dicom_video.read_dicom_video(bad, frames=[1])


def test_sample_scaling_closed_form():
  """12-bit unsigned / signed and MONOCHROME1 samples map linearly onto [0, 255]."""
  class _DS(dict):
    def get(self, key, default=None):  # pylint: disable=useless-parent-delegation
      return super().get(key, default)
  mono2 = dicom_video.DicomVideoInfo(1, 1, 3, None, 'MONOCHROME2', 'US', '')
  mono1 = dicom_video.DicomVideoInfo(1, 1, 3, None, 'MONOCHROME1', 'US', '')
  ds = _DS(BitsStored=12)
  u = np.array([[0, 2048, 4095]], np.uint16)
  np.testing.assert_array_equal(dicom_video._to_rgb8(u, ds, mono2)[0, :, 0],  # pylint: disable=protected-access
                                (u[0].astype(int) * 255) // 4095)
  s = np.array([[-2048, 0, 2047]], np.int16)
  np.testing.assert_array_equal(dicom_video._to_rgb8(s, ds, mono2)[0, :, 0], [0, 127, 255])  # pylint: disable=protected-access
  rgb = dicom_video._to_rgb8(u, ds, mono1)  # pylint: disable=protected-access
  np.testing.assert_array_equal(rgb[0, :, 0], 255 - (u[0].astype(int) * 255) // 4095)
  assert rgb.shape == (1, 3, 3) and (rgb[..., 0] == rgb[..., 2]).all()
