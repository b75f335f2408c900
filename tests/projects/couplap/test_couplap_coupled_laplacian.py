"""Coupled Laplacian: block adjacency (upstream LIL semantics), eigen-equation, scores."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg
import scipy.sparse as sp
from scipy.spatial import cKDTree
from scipy.spatial.transform import Rotation

from jaxvision.projects.couplap import coupled_laplacian as cl
from jaxvision.geometry import graphs
from jaxvision.projects.couplap import matching_scores as ms

@pytest.fixture(scope='module')
def clouds(rodent_points):
  """Two independent 500-point samples of the real rodent skin."""
  rng = np.random.default_rng(1)
  a = rodent_points[rng.choice(len(rodent_points), 500, replace=False)]
  b = rodent_points[rng.choice(len(rodent_points), 450, replace=False)]
  return a, b


def _lil_reference(adj_rows, adj_cols, rows_idx, cols_idx, weights, block_of_rows_first):
  """The upstream assignment done with scipy LIL fancy indexing (its real semantics)."""
  n_r, n_c = adj_rows.shape[0], adj_cols.shape[0]
  first, second = (adj_rows, adj_cols) if block_of_rows_first else (adj_cols, adj_rows)
  full = sp.block_diag([first, second]).tolil()
  off_r = 0 if block_of_rows_first else n_c
  off_c = n_r if block_of_rows_first else 0
  full[rows_idx[:, None] + off_r, cols_idx + off_c] = sp.diags(weights)
  block = full[rows_idx[:, None] + off_r, cols_idx + off_c]
  full[cols_idx[:, None] + off_c, rows_idx + off_r] = block.T
  return full.tocsr().toarray()


def test_upstream_mode_equals_lil_last_write_wins(clouds):
  source, target = clouds
  w_s, w_t = graphs.knn_graph(source), graphs.knn_graph(target)
  cross_target = np.random.default_rng(0).choice(len(target), 300, replace=False)
  c = cl.nearest_coupling(target, source, cross_target, other=0)
  assert len(np.unique(c.other_index)) < len(c.other_index)   # repeats do occur
  got = cl.coupled_adjacency([w_s, w_t], 1, [c], 'upstream').toarray()
  # AD orientation: rows = source nearest neighbours (repeating), cols = target points.
  ref = _lil_reference(w_s, w_t, c.other_index, cross_target, c.weight, True)
  np.testing.assert_allclose(got, ref, atol=1e-15)
  cross_block = got[:len(source), len(source):]
  assert np.all((cross_block > 0).sum(1) <= 1)   # at most one cross edge per source node
  clean = cl.coupled_adjacency([w_s, w_t], 1, [c], 'clean').toarray()
  assert (clean[:len(source), len(source):] > 0).sum() == len(cross_target)


def test_three_cloud_coupling_matches_two_successive_lil_couplings(clouds):
  target, source = clouds
  mirrored = source * np.array([1.0, -1.0, 1.0])
  adjs = [graphs.knn_graph(p) for p in (target, source, mirrored)]
  cross_target = np.random.default_rng(2).choice(len(target), 100, replace=False)
  c1 = cl.nearest_coupling(target, source, cross_target, 1, eps=np.finfo(float).eps)
  c2 = cl.nearest_coupling(target, mirrored, cross_target, 2, eps=np.finfo(float).eps)
  got = cl.coupled_adjacency(adjs, 0, [c1, c2], 'upstream').toarray()
  # BSE orientation: rows = target cross points (unique), cols = repeating neighbours.
  first = sp.csr_matrix(_lil_reference(adjs[0], adjs[1], cross_target, c1.other_index,
                                       c1.weight, True))
  ref = _lil_reference(first, adjs[2], cross_target, c2.other_index, c2.weight, True)
  np.testing.assert_allclose(got, ref, atol=1e-15)


def test_eigenmaps_solve_generalized_problem_with_uncoupled_degrees(clouds):
  source, target = clouds
  res = cl.coupled_eigenmaps([source, target], hub=1, n_maps=8, cross=0.5, seed=3,
                             solver='eigsh')
  w = cl.coupled_adjacency([graphs.knn_graph(source), graphs.knn_graph(target)], 1,
                           res.couplings, 'upstream')
  lap = graphs.laplacian(w).toarray()
  b = np.concatenate([graphs.degrees(graphs.knn_graph(p)) for p in (source, target)])
  ref = scipy.linalg.eigh(lap, np.diag(b), eigvals_only=True, subset_by_index=[0, 8])
  np.testing.assert_allclose(res.eigenvalues, ref[1:], rtol=1e-6, atol=1e-10)
  u = np.concatenate(res.maps)
  resid = lap @ u - b[:, None] * u * res.eigenvalues[None, :]
  assert np.max(np.abs(resid)) < 1e-7
  np.testing.assert_allclose(u.T @ (b[:, None] * u), np.eye(8), atol=1e-8)


@pytest.mark.parametrize('mode', ['upstream', 'clean'])
def test_identical_clouds_score_zero_everywhere(clouds, mode):
  cloud = clouds[0]
  res = cl.coupled_eigenmaps([cloud, cloud.copy()], hub=1, n_maps=10, cross=1.0,
                             cross_mode=mode, seed=0)
  src = res.maps[0][res.couplings[0].other_index]
  tgt = res.maps[1][res.cross_target]
  np.testing.assert_array_equal(res.couplings[0].other_index, res.cross_target)
  assert np.max(ms.cosine_distance_rows(src, tgt)) < 1e-3


def test_scores_invariant_to_a_common_rigid_motion(clouds):
  source, target = clouds
  rot = Rotation.from_euler('xyz', [40, -75, 130], degrees=True).as_matrix()
  shift = np.array([0.3, -1.0, 2.0])
  sel = np.random.default_rng(5).choice(len(target), 200, replace=False)

  def scores(s, t):
    r = cl.coupled_eigenmaps([s, t], hub=1, n_maps=12, cross_target=sel, solver='eigsh')
    return ms.cosine_distance_rows(r.maps[0][r.couplings[0].other_index], r.maps[1][sel])

  np.testing.assert_allclose(scores(source @ rot.T + shift, target @ rot.T + shift),
                             scores(source, target), atol=1e-5)


def test_explicit_cross_source_reproduces_nearest_selection(clouds):
  source, target = clouds
  sel = np.random.default_rng(6).choice(len(target), 150, replace=False)
  nn = cKDTree(source).query(target[sel])[1]
  a = cl.coupled_eigenmaps([source, target], hub=1, n_maps=6, cross_target=sel)
  b = cl.coupled_eigenmaps([source, target], hub=1, n_maps=6, cross_target=sel,
                           cross_source=[nn])
  np.testing.assert_allclose(np.concatenate(a.maps), np.concatenate(b.maps), atol=1e-10)
  with pytest.raises(ValueError, match='repeat'):
    cl.coupled_eigenmaps([source, target], hub=1, n_maps=6, cross_target=np.array([1, 1]))


def test_grassmann_distance_closed_forms():
  rng = np.random.default_rng(0)
  q, _ = np.linalg.qr(rng.normal(size=(40, 6)))
  a, b = q[:, :3], q[:, 3:]
  mix = rng.normal(size=(3, 3))
  assert ms.grassmann_distance(a, a @ mix, clip=True) < 1e-6
  unclipped = ms.grassmann_distance(a, a @ mix)
  assert np.isnan(unclipped) or unclipped < 1e-6   # sigma may round to 1 + 1e-16
  np.testing.assert_allclose(ms.grassmann_distance(a, b), np.sqrt(3), atol=1e-12)
  # Upstream's unclipped sqrt gives NaN when round-off makes a cosine exceed 1.
  assert ms.same_side(float('nan'), 1.0) is False


def test_histogram_alignment_undoes_permutation_and_signs(clouds):
  maps = cl.independent_eigenmaps(clouds[0], 6)
  perm, signs = np.array([3, 0, 5, 1, 2, 4]), np.array([1, -1, -1, 1, 1, -1])
  shuffled = maps[:, perm] * signs
  np.testing.assert_allclose(ms.align_by_histograms(maps, shuffled), maps, atol=1e-12)
