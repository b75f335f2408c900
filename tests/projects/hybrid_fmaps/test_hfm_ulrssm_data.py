"""The ULRSSM-layout reader: .vts files round-trip, bad ones are refused by name."""

import numpy as np
import pytest

from jaxvision.data import meshes
from jaxvision.data.errors import DataFileError
from jaxvision.geometry import primitives
from jaxvision.projects.hybrid_fmaps import data


def test_vts_round_trip_is_one_based(tmp_path):
  path = str(tmp_path / 'a.vts')
  data.write_vts(path, [0, 4, 2])
  assert open(path).read().split() == ['1', '5', '3']
  np.testing.assert_array_equal(data.read_vts(path, num_vertices=5), [0, 4, 2])


@pytest.mark.parametrize('text, problem', [
    ('1\n2\nx\n', 'not an integer'),
    ('1\n0\n', '1-based'),
    ('1\n7\n', 'exceeds'),
    ('\n\n', 'empty'),
])
def test_bad_vts_is_refused_naming_the_file(tmp_path, text, problem):
  path = tmp_path / 'bad_shape.vts'
  path.write_text(text)
  with pytest.raises(DataFileError, match=problem) as e:
    data.read_vts(str(path), num_vertices=5)
  assert str(path) in str(e.value)


def test_layout_loads_shapes_and_refuses_mismatched_templates(tmp_path):
  v, f = primitives.icosphere(1)
  (tmp_path / 'shapes').mkdir()
  (tmp_path / 'corres').mkdir()
  for name, n in (('a', 5), ('b', 6)):
    meshes.write_off(str(tmp_path / 'shapes' / f'{name}.off'), v, f)
    data.write_vts(str(tmp_path / 'corres' / f'{name}.vts'), np.arange(n))
  s = data.load_shape(str(tmp_path), 'a')
  np.testing.assert_allclose(s.verts, v)             # write_off round-trips exactly
  np.testing.assert_array_equal(s.faces, f)
  with pytest.raises(DataFileError, match='different lengths'):
    data.load_shapes(str(tmp_path))
  assert data.pairs(['a', 'b', 'c']) == [('a', 'b'), ('a', 'c'), ('b', 'c')]
  assert len(data.pairs(['a', 'b', 'c'], ordered=True)) == 6


def test_obj_groups(tmp_path):
  path = tmp_path / 'g.obj'
  path.write_text('v 0 0 0\nv 1 0 0\nv 0 1 0\nv 0 0 1\n'
                  'g skin\nf 1 2 3\ng joint-x\nf 1 3 4\nf 2 3 4\n')
  v, f = meshes.read_obj(str(path), group='skin')
  assert len(v) == 4
  np.testing.assert_array_equal(f, [[0, 1, 2]])
  groups = meshes.obj_group_vertices(str(path))
  np.testing.assert_array_equal(groups['joint-x'], [0, 1, 2, 3])
  np.testing.assert_array_equal(groups['skin'], [0, 1, 2])
  with pytest.raises(DataFileError, match="no faces in group 'hands'"):
    meshes.read_obj(str(path), group='hands')
