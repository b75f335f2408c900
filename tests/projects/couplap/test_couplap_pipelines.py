"""Anomaly and BSE pipelines: upstream parity, identical clouds, rigid invariance."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg
import scipy.sparse as sp
from scipy.spatial import cKDTree
from scipy.spatial.transform import Rotation
from sklearn.metrics.pairwise import cosine_distances
from sklearn.neighbors import kneighbors_graph

from jaxvision.data import meshes
from jaxvision.projects.couplap import preprocess
from jaxvision.projects.couplap import anomaly as ad
from jaxvision.projects.couplap import bone_side as bs

@pytest.fixture(scope='module')
def pair(rodent_points):
  rng = np.random.default_rng(0)
  source = rodent_points[rng.choice(len(rodent_points), 700, replace=False)]
  target = rodent_points[rng.choice(len(rodent_points), 650, replace=False)].copy()
  bump = np.linalg.norm(target - target[0], axis=1) < 0.02
  target[bump, 2] += 0.004
  return source, target


def _upstream_reference_scores(source, target, cross_target, maps):
  """The upstream recipe rebuilt from its documented semantics with sklearn/scipy:
  kNN Gaussian graphs, LIL cross block (last write wins), B = uncoupled degrees,
  dense generalized eigh, largest-|entry| sign rule, cosine distances."""
  def gauss(p):
    d = kneighbors_graph(p, 10, mode='distance')
    c = kneighbors_graph(p, 10, mode='connectivity')
    d, c = (d + d.T).toarray(), (c + c.T).toarray()
    a = np.where(c > 0, d / np.maximum(c, 1), 0)
    return np.where(c > 0, np.exp(-a ** 2 / a.max() ** 2), 0)
  w_s, w_t = gauss(source), gauss(target)
  dist, cross_source = cKDTree(source).query(target[cross_target])
  weights = np.exp(-dist ** 2 / dist.max() ** 2)
  n_s = len(source)
  full = sp.block_diag([w_s, w_t]).tolil()
  full[cross_source[:, None], cross_target + n_s] = sp.diags(weights)
  block = full[cross_source[:, None], cross_target + n_s]
  full[cross_target[:, None] + n_s, cross_source] = block.T
  w = full.toarray()
  lap = np.diag(w.sum(1)) - w
  b = np.concatenate([w_s.sum(1), w_t.sum(1)])
  _, vecs = scipy.linalg.eigh(lap, np.diag(b), subset_by_index=[0, maps])
  signs = np.sign(vecs[np.argmax(np.abs(vecs), 0), np.arange(vecs.shape[1])])
  emb = (vecs * signs)[:, 1:]
  return cosine_distances(emb[:n_s][cross_source], emb[n_s:][cross_target]).diagonal()


def test_upstream_mode_scores_match_reference_point_for_point(pair):
  source, target = pair
  sel = np.random.default_rng(4).choice(len(target), 325, replace=False)
  settings = ad.ADSettings(maps=12, cross_mode='upstream', solver='eigsh')
  scores, ct, _ = ad.score_pair(source, target, settings, methods=('coupled',),
                                cross_target=sel)
  ref = _upstream_reference_scores(source, target, sel, 12)
  np.testing.assert_array_equal(ct, sel)
  np.testing.assert_allclose(scores['coupled'], ref, atol=1e-3)


def test_identical_clouds_score_zero_for_every_spectral_method(pair):
  cloud = pair[0]
  settings = ad.ADSettings(maps=10, cross=1.0)
  scores, _, _ = ad.score_pair(cloud, cloud.copy(), settings)
  for method in ('coupled', 'euclidean', 'independent', 'histogram'):
    assert np.max(scores[method]) < 1e-3, method


def test_scores_invariant_to_rigid_motion_of_the_test_cloud(pair):
  """The test cloud moved anywhere: the pipeline's own registration undoes it."""
  source, target = pair
  settings = ad.ADSettings(maps=12, cross=0.5, cpd_down=500, solver='eigsh')
  rot = Rotation.from_euler('zyx', [150, 30, -70], degrees=True).as_matrix()
  moved = target @ rot.T + np.array([0.2, -0.1, 0.5])
  out = []
  for tgt in (target, moved):
    rng = np.random.default_rng(7)
    src = ad.register(source, tgt, settings, rng)
    scores, _, _ = ad.score_pair(src, tgt, settings, methods=('coupled', 'euclidean'),
                                 rng=rng)
    out.append(scores)
  for m in ('coupled', 'euclidean'):
    np.testing.assert_allclose(out[1][m], out[0][m], atol=2e-3)


def test_scores_to_image_and_closing():
  img = ad.scores_to_image(np.array([1.0, 1.0]), np.array([0, 2]), (1, 3), 3.0)
  np.testing.assert_allclose(img, [[1.0, 1.0, 1.0]])   # the gap between them is closed
  assert ad.disk(1).sum() == 5
  with pytest.raises(ValueError, match='unknown anomaly method'):
    ad.score_pair(np.eye(12, 3), np.eye(12, 3), ad.ADSettings(), methods=('magic',))


def test_bse_identical_and_mirrored_targets():
  femur = meshes.read_point_cloud(meshes.packaged_file('dm_control',
                                                       'suite/dog_assets/BONEFemoris_L.stl'))
  settings = bs.BSESettings(cross=1.0, maps=10, grassmann_clip=True)
  same = bs.predict_same_side(femur, femur.copy(), settings)
  mirror = bs.predict_same_side(femur, preprocess.pca_mirror(femur) + 0.3, settings)
  for m in bs.METHODS:
    assert same[m][0], m
    assert not mirror[m][0], m
  assert same['chamfer'][1] < 1e-6   # registration recovers the identity exactly
