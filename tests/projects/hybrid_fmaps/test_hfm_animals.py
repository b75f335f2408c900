"""The embedded dog benchmark: .skn bones, skinning closed forms, the written layout."""

import struct

import numpy as np
import pytest

from jaxvision.data import meshes
from jaxvision.data.errors import DataFileError
from jaxvision.projects.hybrid_fmaps import animals
from jaxvision.projects.hybrid_fmaps import data
from jaxvision.projects.hybrid_fmaps import skinning


def _skn(path, verts, faces, bones, trailing=b''):
  out = struct.pack('<iiii', len(verts), 0, len(faces), len(bones))
  out += np.asarray(verts, '<f4').tobytes() + np.asarray(faces, '<i4').tobytes()
  for name, pos, ids, w in bones:
    out += name.encode().ljust(40, b'\0') + np.asarray(pos, '<f4').tobytes()
    out += np.asarray((1, 0, 0, 0), '<f4').tobytes() + struct.pack('<i', len(ids))
    out += np.asarray(ids, '<i4').tobytes() + np.asarray(w, '<f4').tobytes()
  path.write_bytes(out + trailing)
  return str(path)


def test_read_skn_bones_round_trip_and_refusals(tmp_path):
  v = [[0, 0, 0], [1, 0, 0], [0, 1, 0], [1, 0, 0]]
  bones = [('root', (0.5, 0, 0), [0, 1], [1.0, 0.25]), ('tip', (1, 2, 3), [1, 2, 3],
                                                        [0.75, 1, 1])]
  path = _skn(tmp_path / 'a.skn', v, [[0, 1, 2]], bones)
  got = meshes.read_skn_bones(path)
  assert [b['name'] for b in got] == ['root', 'tip']
  np.testing.assert_allclose(got[1]['bindpos'], (1, 2, 3))
  np.testing.assert_array_equal(got[1]['vertices'], [1, 2, 3])
  np.testing.assert_allclose(got[0]['weights'], [1.0, 0.25])
  with pytest.raises(DataFileError, match='trailing'):
    meshes.read_skn_bones(_skn(tmp_path / 'b.skn', v, [[0, 1, 2]], bones, b'xx'))
  with pytest.raises(DataFileError, match='vertex ids outside'):
    meshes.read_skn_bones(_skn(tmp_path / 'c.skn', v, [[0, 1, 2]], [('r', (0, 0, 0), [7],
                                                                     [1.0])]))
  (tmp_path / 'd.skn').write_bytes(open(path, 'rb').read()[:-6])
  with pytest.raises(DataFileError, match='exceed the file'):
    meshes.read_skn_bones(str(tmp_path / 'd.skn'))
  uniq, faces, inverse = meshes.unique_vertices(np.asarray(v, float), [[0, 1, 2], [3, 2, 0]],
                                                return_inverse=True)
  np.testing.assert_array_equal(uniq[inverse], v)
  np.testing.assert_array_equal(faces, [[0, 2, 1], [2, 1, 0]])


def test_skinning_closed_forms():
  rng = np.random.default_rng(0)
  verts = rng.normal(size=(20, 3))
  heads = {'a': np.zeros(3), 'b': np.array([1.0, 0, 0])}
  parents = {'a': None, 'b': 'a'}
  weights = {'a': (np.arange(10), np.ones(10)), 'b': (np.arange(10, 20), np.ones(10))}
  np.testing.assert_allclose(skinning.lbs(verts, heads, parents, weights), verts)
  # b: rotation by 90 deg about z around its head, scale 2: x -> h + 2 R (x - h)
  out = skinning.lbs(verts, heads, parents, weights, {'b': (0, 0, np.pi / 2)}, {'b': 2.0})
  rz = np.array([[0.0, -1, 0], [1, 0, 0], [0, 0, 1]])
  np.testing.assert_allclose(out[10:], heads['b'] + 2 * (verts[10:] - heads['b']) @ rz.T,
                             atol=1e-12)
  np.testing.assert_allclose(out[:10], verts[:10])
  # a scaled by 3 about the origin: b's vertices inherit it
  out = skinning.lbs(verts, heads, parents, weights, scales={'a': 3.0})
  np.testing.assert_allclose(out, 3 * verts, atol=1e-12)
  # half-half weights blend the two transforms linearly
  half = {'a': ([0], [0.5]), 'b': ([0], [0.5])}
  out = skinning.lbs(verts[:1], heads, parents, half, {'b': (0, 0, np.pi)})
  flipped = heads['b'] + (verts[0] - heads['b']) * np.array([-1, -1, 1])
  np.testing.assert_allclose(out[0], (verts[0] + flipped) / 2, atol=1e-12)
  with pytest.raises(ValueError, match='unknown bones'):
    skinning.lbs(verts, heads, parents, weights, {'c': (0, 0, 1)})
  with pytest.raises(ValueError, match='positive'):
    skinning.lbs(verts, heads, parents, weights, scales={'a': 0.0})
  with pytest.raises(ValueError, match='cycle'):
    skinning.lbs(verts, heads, {'a': 'b', 'b': 'a'}, weights)


def test_dog_template_and_a_knee_bend():
  verts, faces, heads, parents, weights = animals.template()
  assert verts.shape == (16952, 3) and len(heads) == 57
  assert parents['torso'] is None and parents['finger_L'] == 'hand_L'
  assert parents['toe_R'] == 'foot_R' and parents['hand_L'] == 'lower_arm_L'
  total = np.zeros(len(verts))
  for idx, w in weights.values():
    np.add.at(total, idx, w)
  np.testing.assert_allclose(total, 1.0, atol=1e-6)
  # Euler characteristic of the welded closed skin: 2
  assert len(verts) - len(meshes_edges(faces)) + len(faces) == 2
  np.testing.assert_allclose(animals.posed_dog({}, {}), verts, atol=1e-12)
  # bending the left knee rotates the vertices fully inside lower_leg_L's subtree rigidly
  sub = {'lower_leg_L', 'foot_L', 'toe_L'}
  inside = np.zeros(len(verts))
  for b, (idx, w) in weights.items():
    if b in sub:
      np.add.at(inside, idx, w)
  posed = animals.posed_dog({}, {'lower_leg_L': (0.0, 0.7, 0.0)})
  full, outside = np.isclose(inside, 1.0), inside == 0
  assert full.sum() > 500 and outside.sum() > 10000
  c, s = np.cos(0.7), np.sin(0.7)
  ry = np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])
  h = heads['lower_leg_L']
  np.testing.assert_allclose(posed[full], (verts[full] - h) @ ry.T + h, atol=1e-12)
  np.testing.assert_allclose(posed[outside], verts[outside], atol=1e-12)


def meshes_edges(faces):
  e = np.sort(np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]]), axis=1)
  return np.unique(e, axis=0)


def test_written_dogs_are_read_back_with_exact_correspondence(tmp_path):
  folder = animals.ensure_benchmark(str(tmp_path), num_vertices=150, names=('dog_01',))
  shape = data.load_shape(folder, 'dog_01')
  verts, faces, corr, keep = animals.build_shape('dog_01', 150, sorted(animals.SHAPES).index(
      'dog_01'))
  np.testing.assert_allclose(shape.verts, verts, atol=1e-5)       # .off text round trip
  np.testing.assert_array_equal(shape.faces, faces)
  np.testing.assert_array_equal(shape.corr, corr)
  assert len(shape.corr) == 16952
  # coarse vertex j is welded template vertex keep[j], so template keep[j] maps to j
  np.testing.assert_array_equal(shape.corr[keep], np.arange(len(keep)))
  assert animals.ensure_benchmark(str(tmp_path), num_vertices=150, names=('dog_01',)) == folder
  with pytest.raises(ValueError, match='unknown embedded dogs'):
    animals.ensure_benchmark(str(tmp_path), names=('cat',))
