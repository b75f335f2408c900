"""Mesh readers refuse bad files by name (issue 10 items 10, 11, 13); the .off reader."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from jaxvision.data import meshes
from tests.data.refusals import refused

ANT = ('pyvista', 'examples/ant.ply')            # binary PLY, 486 vertices, 912 triangles
AIRPLANE = ('pyvista', 'examples/airplane.ply')  # ascii PLY


def _write(tmp_path, name, content):
  path = tmp_path / name
  if isinstance(content, str):
    path.write_text(content)
  else:
    path.write_bytes(content)
  return str(path)


# --- OBJ -------------------------------------------------------------------------------

def test_obj_two_coordinate_vertices_are_refused(tmp_path):
  # 6 vertices of 2 numbers used to be reshaped into 4 wrong 3-D vertices.
  path = _write(tmp_path, 'flat.obj', 'v 0 0\nv 1 0\nv 0 1\nv 1 1\nv 2 0\nv 0 2\nf 1 2 3\n')
  with refused(path, 'line 1', 'x y z'):
    meshes.read_mesh(path)


def test_obj_mixed_vertex_arity_is_refused(tmp_path):
  path = _write(tmp_path, 'mixed.obj', 'v 0 0 0\nv 1 0 0 1 0 0\nv 0 1 0\nf 1 2 3\n')
  with refused(path, 'line 2', 'mixed'):
    meshes.read_mesh(path)


def test_obj_non_numeric_and_zero_index_are_refused(tmp_path):
  path = _write(tmp_path, 'nan.obj', 'v 0 0 0\nv 1 zero 0\nv 0 1 0\nf 1 2 3\n')
  with refused(path, 'line 2'):
    meshes.read_mesh(path)
  path = _write(tmp_path, 'zero.obj', 'v 0 0 0\nv 1 0 0\nv 0 1 0\nf 0 1 2\n')
  with refused(path, 'line 4', 'start at 1'):
    meshes.read_mesh(path)


# --- PLY -------------------------------------------------------------------------------

def _ant_copy(tmp_path, name='ant.ply'):
  v, f = meshes.read_mesh(meshes.packaged_file(*ANT))
  path = str(tmp_path / name)
  meshes.write_ply(path, v, f)
  return path, v, f


@pytest.mark.parametrize('keep', [0.2, 0.6, 0.999])
def test_truncated_binary_ply_is_refused(tmp_path, keep):
  path, _, _ = _ant_copy(tmp_path)
  data = open(path, 'rb').read()
  header = data.index(b'end_header\n') + len(b'end_header\n')
  cut = _write(tmp_path, 'cut.ply', data[:header + int(keep * (len(data) - header))])
  with refused(cut, 'truncated'):
    meshes.read_mesh(cut)


def test_truncated_ascii_ply_is_refused(tmp_path):
  text = open(meshes.packaged_file(*AIRPLANE), encoding='ascii').read()
  cut = _write(tmp_path, 'cut.ply', text[:len(text) * 2 // 3])
  with refused(cut, 'truncated'):
    meshes.read_mesh(cut)


def _ply(props, body, fmt='ascii', count=3, face=True):
  header = ['ply', f'format {fmt} 1.0', f'element vertex {count}']
  header += [f'property {t} {n}' for t, n in props]
  if face:
    header += ['element face 1', 'property list uchar int vertex_indices']
  return '\n'.join(header + ['end_header', body]) + '\n'


def test_ply_without_z_is_refused(tmp_path):
  path = _write(tmp_path, 'xy.ply', _ply([('float', 'x'), ('float', 'y')],
                                         '0 0\n1 0\n0 1\n3 0 1 2'))
  with refused(path, "'z'"):
    meshes.read_mesh(path)


def test_unknown_ply_property_type_is_refused(tmp_path):
  path = _write(tmp_path, 'half.ply', _ply([('float16', 'x'), ('float', 'y'), ('float', 'z')],
                                           '0 0 0\n1 0 0\n0 1 0\n3 0 1 2'))
  with refused(path, 'line 4', 'float16'):
    meshes.read_mesh(path)


def test_ply_header_claiming_huge_counts_is_refused_without_allocating(tmp_path):
  header = _ply([('float', 'x'), ('float', 'y'), ('float', 'z')], '', fmt='binary_little_endian',
                count=10**12, face=False).encode()
  path = _write(tmp_path, 'huge.ply', header + b'\0' * 24)
  with refused(path, 'truncated', str(10**12)):
    meshes.read_mesh(path)


def test_ply_nan_vertex_and_bad_face_index_are_refused(tmp_path):
  props = [('float', 'x'), ('float', 'y'), ('float', 'z')]
  path = _write(tmp_path, 'nan.ply', _ply(props, '0 0 0\nnan 0 0\n0 1 0\n3 0 1 2'))
  with refused(path, 'non-finite'):
    meshes.read_mesh(path)
  path = _write(tmp_path, 'idx.ply', _ply(props, '0 0 0\n1 0 0\n0 1 0\n3 0 1 1.5'))
  with refused(path, 'not an integer'):
    meshes.read_mesh(path)


# --- STL -------------------------------------------------------------------------------

def test_ascii_stl_vertex_count_not_a_multiple_of_3_is_refused(tmp_path):
  lines = ['solid x', 'facet normal 0 0 1', 'outer loop', 'vertex 0 0 0', 'vertex 1 0 0',
           'vertex 0 1 0', 'endloop', 'endfacet', 'facet normal 0 0 1', 'outer loop',
           'vertex 0 0 1', 'vertex 1 0 1']
  path = _write(tmp_path, 'cut.stl', '\n'.join(lines) + '\n')
  with refused(path, '5 vertices', 'multiple of 3'):
    meshes.read_mesh(path)


# --- degenerate faces --------------------------------------------------------------------

def test_degenerate_faces_are_dropped_with_a_counted_warning(tmp_path):
  obj = ('v 0 0 0\nv 1 0 0\nv 0 1 0\nv 2 0 0\n'
         'f 1 2 3\n'        # good
         'f 1 2\n'          # a polygon of 2 vertices
         'f 1 1 2\n'        # repeats a vertex
         'f 1 2 4\n')       # collinear: zero area
  path = _write(tmp_path, 'degen.obj', obj)
  with pytest.warns(UserWarning, match='1 polygons with fewer than 3') as record:
    v, f = meshes.read_mesh(path)
  msg = str(record[0].message)
  assert path in msg and '1 triangles repeating' in msg and '1 zero-area' in msg
  np.testing.assert_array_equal(f, [[0, 1, 2]])
  assert v.shape == (4, 3)
  with refused(path, 'degenerate'):
    meshes.read_mesh(path, degenerate='raise')


def test_clean_real_meshes_give_no_warning():
  with warnings.catch_warnings():
    warnings.simplefilter('error')
    for name in (ANT, AIRPLANE, ('pyvista', 'examples/sphere.ply')):
      meshes.read_mesh(meshes.packaged_file(*name))


# --- OFF ---------------------------------------------------------------------------------

def _off_text(v, f, header='OFF'):
  lines = [header, '# written by the test', f'{len(v)} {len(f)} 0']
  lines += [' '.join(f'{x:.9g}' for x in row) for row in v]
  lines += [f'{len(p)} ' + ' '.join(map(str, p)) for p in f]
  return '\n'.join(lines) + '\n'


def test_off_reader_reads_a_real_mesh_exactly(tmp_path):
  v, f = meshes.read_mesh(meshes.packaged_file(*ANT))   # no .off ships in any installed wheel
  path = _write(tmp_path, 'ant.off', _off_text(v, f))
  v2, f2 = meshes.read_mesh(path)
  np.testing.assert_allclose(v2, v, rtol=1e-7)
  np.testing.assert_array_equal(f2, f)


def test_off_variants_comments_and_polygons(tmp_path):
  text = ('COFF # a cube face as a quad, coloured\n'
          '\n4 2 0\n'
          '0 0 0 255 0 0 255\n1 0 0 255 0 0 255\n1 1 0 0 255 0 255\n0 1 0 0 0 255 255\n'
          '4 0 1 2 3 0.5 0.5 0.5\n'
          '3 0 2 3   # a triangle\n')
  v, f = meshes.read_mesh(_write(tmp_path, 'quad.off', text))
  assert v.shape == (4, 3)
  np.testing.assert_array_equal(f, [[0, 1, 2], [0, 2, 3], [0, 2, 3]])
  # NOFF: normals after the position; counts on the header line (ModelNet's "OFF8 6 0").
  noff = 'NOFF 3 1 0\n0 0 0 0 0 1\n1 0 0 0 0 1\n0 1 0 0 0 1\n3 0 1 2\n'
  v, f = meshes.read_mesh(_write(tmp_path, 'n.off', noff))
  np.testing.assert_array_equal(v, [[0, 0, 0], [1, 0, 0], [0, 1, 0]])
  v, f = meshes.read_mesh(_write(tmp_path, 'm.off', 'OFF3 1 0\n0 0 0\n1 0 0\n0 1 0\n3 0 1 2\n'))
  np.testing.assert_array_equal(f, [[0, 1, 2]])


@pytest.mark.parametrize('text, words', [
    ('', ('empty',)),
    ('PLY\n3 1 0\n', ('not an off',)),
    ('OFF\n', ('truncated',)),
    ('OFF\n3 x 0\n', ('line 2', 'non-negative')),
    ('OFF\n3 1 0\n0 0 0\n1 0 0\n', ('truncated', '3 vertices')),
    ('OFF\n1000000000 1 0\n0 0 0\n', ('truncated',)),
    ('OFF\n3 1 0\n0 0 0\n1 0\n0 1 0\n3 0 1 2\n', ('line 4', 'needs 3 values')),
    ('NOFF\n3 1 0\n0 0 0\n1 0 0\n0 1 0\n3 0 1 2\n', ('line 3', 'normal')),
    ('OFF\n3 1 0\n0 0 0\n1 0 0\n0 1 0\n4 0 1 2\n', ('line 6', 'declares 4')),
    ('OFF\n3 1 0\n0 0 0\n1 0 0\n0 1 0\n3 0 1 7\n', ('vertex 7', 'outside')),
    ('OFF\n3 1 0\n0 0 0\n1 inf 0\n0 1 0\n3 0 1 2\n', ('non-finite',)),
    ('4OFF\n3 1 0\n0 0 0 0\n1 0 0 0\n0 1 0 0\n3 0 1 2\n', ('4d',)),
])
def test_bad_off_files_are_refused(tmp_path, text, words):
  path = _write(tmp_path, 'bad.off', text)
  with refused(path, *words):
    meshes.read_mesh(path)
