"""Mesh readers (.ply/.obj/.stl/.skn) and the MVTec 3D-AD layout, on packaged real files."""

from __future__ import annotations

import os
import struct

import numpy as np
import pytest

from jaxvision.data import meshes
from jaxvision.data import mvtec3d

DOG_FEMUR = 'suite/dog_assets/BONEFemoris_L.stl'
RODENT = 'locomotion/walkers/assets/rodent_walker_skin.skn'


def test_skn_header_counts_and_faces():
  path = meshes.packaged_file('dm_control', RODENT)
  v, f = meshes.read_mesh(path)
  with open(path, 'rb') as fh:
    nv, nt, nf, nb = struct.unpack('<iiii', fh.read(16))
  assert v.shape == (nv, 3) and f.shape == (nf, 3) and nb > 0 and nt in (0, nv)
  # The skin duplicates vertices (seams): the unique cloud is smaller, faces stay valid.
  u, fu = meshes.unique_vertices(v, f)
  assert len(u) < len(v)
  np.testing.assert_allclose(u[fu], v[f])


def test_stl_binary_and_ascii_agree(tmp_path):
  v, f = meshes.read_mesh(meshes.packaged_file('dm_control', DOG_FEMUR))
  tri = v[f]
  lines = ['solid bone']
  for t in tri:
    lines += ['facet normal 0 0 0', 'outer loop'] + [f'vertex {a:.9g} {b:.9g} {c:.9g}' for a, b, c in t]
    lines += ['endloop', 'endfacet']
  (tmp_path / 'a.stl').write_text('\n'.join(lines + ['endsolid bone']))
  va, fa = meshes.read_mesh(str(tmp_path / 'a.stl'))
  np.testing.assert_allclose(va[fa], tri, rtol=1e-6)
  assert len(meshes.read_point_cloud(str(tmp_path / 'a.stl'))) == len(meshes.unique_vertices(v))


def test_ply_binary_ascii_obj_roundtrip(tmp_path):
  v, f = meshes.read_mesh(meshes.packaged_file('pyvista', 'examples/ant.ply'))   # binary
  va, fa = meshes.read_mesh(meshes.packaged_file('pyvista', 'examples/airplane.ply'))  # ascii
  assert v.shape == (486, 3) and f.shape == (912, 3) and va.shape == (1335, 3)
  meshes.write_ply(str(tmp_path / 'ant.ply'), v, f)
  v2, f2 = meshes.read_mesh(str(tmp_path / 'ant.ply'))
  np.testing.assert_allclose(v2, v, rtol=1e-6)
  np.testing.assert_array_equal(f2, f)
  with open(tmp_path / 'ant.obj', 'w') as fh:
    fh.writelines(f'v {a} {b} {c}\n' for a, b, c in v)
    fh.writelines(f'f {a + 1}/1 {b + 1} {c + 1}\n' for a, b, c in f)
  v3, f3 = meshes.read_mesh(str(tmp_path / 'ant.obj'))
  np.testing.assert_allclose(v3, v)
  np.testing.assert_array_equal(f3, f)


def test_mesh_errors_are_named(tmp_path):
  with pytest.raises(FileNotFoundError):
    meshes.read_mesh(str(tmp_path / 'none.ply'))
  (tmp_path / 'x.xyz').write_text('0 0 0')
  with pytest.raises(ValueError, match='unsupported'):
    meshes.read_mesh(str(tmp_path / 'x.xyz'))
  (tmp_path / 'bad.skn').write_bytes(struct.pack('<iiii', 1000, 0, 10, 0))
  with pytest.raises(ValueError, match='exceed'):
    meshes.read_mesh(str(tmp_path / 'bad.skn'))
  (tmp_path / 'bad.obj').write_text('v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 9\n')
  with pytest.raises(ValueError, match='outside'):
    meshes.read_mesh(str(tmp_path / 'bad.obj'))


def test_mvtec_layout_roundtrip(tmp_path):
  rng = np.random.default_rng(0)
  xyz = rng.normal(size=(12, 10, 3)).astype(np.float32)
  xyz[0, 0] = 0.0
  gt = rng.random((12, 10)) < 0.2
  mvtec3d.write_sample(str(tmp_path), 'bone', 'train', 'good', '000', xyz)
  mvtec3d.write_sample(str(tmp_path), 'bone', 'test', 'crack', '000', xyz, gt)
  mvtec3d.write_sample(str(tmp_path), 'bone', 'test', 'good', '000', xyz)
  assert mvtec3d.list_classes(str(tmp_path)) == ['bone']
  samples = mvtec3d.test_samples(str(tmp_path), 'bone')
  assert [(s.defect, s.name) for s in samples] == [('crack', '000'), ('good', '000')]
  np.testing.assert_array_equal(mvtec3d.read_xyz(samples[0].xyz_path), xyz)
  np.testing.assert_array_equal(mvtec3d.read_gt(samples[0].gt_path), gt)
  assert not mvtec3d.read_gt(samples[1].gt_path, (12, 10)).any()
  assert os.path.basename(mvtec3d.train_good(str(tmp_path), 'bone')[0].xyz_path) == '000.tiff'
  with pytest.raises(FileNotFoundError, match='train'):
    mvtec3d.train_good(str(tmp_path / 'nothing'), 'bone')
  with pytest.raises(ValueError, match='H×W×3'):
    mvtec3d.write_sample(str(tmp_path), 'bone', 'test', 'good', '001', xyz[..., :2])
