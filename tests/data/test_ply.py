"""jaxvision.data.ply: the three PLY encodings parsed to the same mesh; defects named."""

import numpy as np
import pytest

from jaxvision.data import ply
from jaxvision.data.errors import DataFileError

VERTS = np.array([[0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0.5]], np.float64)


def test_binary_little_endian_round_trip(tmp_path):
  path = str(tmp_path / 'm.ply')
  ply.write_ply(path, VERTS, [[0, 1, 2], [0, 2, 3]])
  v, f = ply.parse_ply(path)
  np.testing.assert_array_equal(v, VERTS.astype(np.float32))
  np.testing.assert_array_equal(np.asarray(f), [[0, 1, 2], [0, 2, 3]])
  ply.write_ply(path, VERTS)   # a point cloud: no faces
  v, f = ply.parse_ply(path)
  assert v.shape == (4, 3) and len(f) == 0


def test_ascii_with_extra_properties_and_a_quad(tmp_path):
  path = tmp_path / 'a.ply'
  path.write_text('\n'.join([
      'ply', 'format ascii 1.0', 'comment made by hand', 'element vertex 4',
      'property float x', 'property float y', 'property float z', 'property uchar red',
      'element face 1', 'property list uchar int vertex_indices', 'end_header',
      *[f'{x} {y} {z} 7' for x, y, z in VERTS], '4 0 1 2 3', '']))
  v, f = ply.parse_ply(str(path))
  np.testing.assert_allclose(v, VERTS)
  assert [list(map(int, p)) for p in f] == [[0, 1, 2, 3]]


def test_binary_big_endian_with_double_vertices(tmp_path):
  path = tmp_path / 'b.ply'
  header = '\n'.join(['ply', 'format binary_big_endian 1.0', 'element vertex 4',
                      'property double x', 'property double y', 'property double z',
                      'element face 1', 'property list uchar uint vertex_indices',
                      'end_header', ''])
  face = np.zeros(1, np.dtype([('n', 'u1'), ('i', '>u4', 3)]))
  face['n'], face['i'] = 3, [1, 2, 3]
  path.write_bytes(header.encode() + VERTS.astype('>f8').tobytes() + face.tobytes())
  v, f = ply.parse_ply(str(path))
  np.testing.assert_array_equal(v, VERTS)
  np.testing.assert_array_equal(np.asarray(f).reshape(-1, 3), [[1, 2, 3]])


def test_defects_are_named(tmp_path):
  path = tmp_path / 'bad.ply'
  ply.write_ply(str(path), VERTS, [[0, 1, 2]])
  data = path.read_bytes()
  path.write_bytes(data[:-5])
  with pytest.raises(DataFileError, match='bad.ply'):
    ply.parse_ply(str(path))
  path.write_text('ply\nformat ascii 1.0\nelement vertex 1\nproperty float x\n'
                  'property float y\nend_header\n0 0\n')
  with pytest.raises(DataFileError, match="no 'z' property"):
    ply.parse_ply(str(path))
  path.write_text('ply\nformat ascii 1.0\nelement vertex 1000000000000\nproperty float x\n'
                  'property float y\nproperty float z\nend_header\n0 0 0\n')
  with pytest.raises(DataFileError, match='bad.ply'):
    ply.parse_ply(str(path))
  path.write_bytes(b'not a ply at all\n')
  with pytest.raises(DataFileError, match='bad.ply'):
    ply.parse_ply(str(path))
