"""Mesh operators and edge-graph geodesics against closed forms (Hybrid FMaps item 1, 6)."""

import numpy as np
import pytest

from jaxvision.geometry import geodesics
from jaxvision.geometry import mesh_operators as mo
from jaxvision.geometry import primitives


def _jittered_grid(seed=0):
  v, f = primitives.grid(6, 5, size=1.0)
  rng = np.random.default_rng(seed)
  boundary = (np.isclose(v[:, 0], 0) | np.isclose(v[:, 0], 1) | np.isclose(v[:, 1], 0)
              | np.isclose(v[:, 1], 1))
  v[~boundary, :2] += rng.uniform(-0.05, 0.05, (np.sum(~boundary), 2))
  return v, f, ~boundary


def test_cotan_laplacian_kills_linear_functions_at_flat_interior_vertices():
  v, f, interior = _jittered_grid()
  lap = mo.cotan_laplacian(v, f)
  a = np.array([0.7, -1.3, 0.0])
  lin = v @ a + 0.4
  np.testing.assert_allclose((lap @ lin)[interior], 0.0, atol=1e-12)
  # ...but not at the boundary, where the discrete Laplacian sees a one-sided fan.
  assert np.abs(lap @ lin)[~interior].max() > 1e-3
  # Symmetric, rows sum to zero, and the Dirichlet energy of a linear function is exact:
  # fᵀ L f = Σ_t A_t |∇f|² = area · |a|² (cotan weights are the P1 stiffness matrix).
  np.testing.assert_allclose((lap - lap.T).toarray(), 0.0, atol=1e-14)
  np.testing.assert_allclose(lap @ np.ones(len(v)), 0.0, atol=1e-12)
  np.testing.assert_allclose(lin @ (lap @ lin), mo.total_area(v, f) * a @ a, rtol=1e-12)


def test_cotan_weights_of_a_single_triangle():
  v = np.array([[0, 0, 0], [2, 0, 0], [0.5, 1.5, 0]], float)
  lap = mo.cotan_laplacian(v, [[0, 1, 2]]).toarray()
  def cot(p, a, b):
    u, w = v[a] - v[p], v[b] - v[p]
    return u @ w / np.linalg.norm(np.cross(u, w))
  np.testing.assert_allclose(lap[0, 1], -0.5 * cot(2, 0, 1), rtol=1e-13)
  np.testing.assert_allclose(lap[1, 2], -0.5 * cot(0, 1, 2), rtol=1e-13)
  np.testing.assert_allclose(lap[0, 2], -0.5 * cot(1, 0, 2), rtol=1e-13)


def _circumcentric_areas(p):
  """Voronoi cells of a non-obtuse triangle from its circumcentre (independent route)."""
  a, b, c = p
  ab, ac = b - a, c - a
  n = np.cross(ab, ac)
  centre = a + (np.cross(n, ab) * (ac @ ac) + np.cross(ac, n) * (ab @ ab)) / (2 * n @ n)
  def quad(q0, q1, q2, q3):
    return 0.5 * (np.linalg.norm(np.cross(q1 - q0, q2 - q0)) + np.linalg.norm(np.cross(q2 - q0, q3 - q0)))
  return np.array([quad(a, (a + b) / 2, centre, (a + c) / 2),
                   quad(b, (b + c) / 2, centre, (b + a) / 2),
                   quad(c, (c + a) / 2, centre, (c + b) / 2)])


def test_voronoi_mass_acute_and_obtuse_triangles():
  acute = np.array([[0, 0, 0], [1.0, 0, 0], [0.4, 0.9, 0.2]])
  np.testing.assert_allclose(mo.voronoi_mass(acute, [[0, 1, 2]]), _circumcentric_areas(acute),
                             rtol=1e-12)
  obtuse = np.array([[0, 0, 0], [2.0, 0, 0], [0.3, 0.4, 0]])     # obtuse at vertex 2
  area = mo.total_area(obtuse, [[0, 1, 2]])
  np.testing.assert_allclose(mo.voronoi_mass(obtuse, [[0, 1, 2]]),
                             [area / 4, area / 4, area / 2], rtol=1e-12)
  # The barycentric mass splits in thirds; both sum to the total area on a closed mesh.
  np.testing.assert_allclose(mo.barycentric_mass(obtuse, [[0, 1, 2]]), area / 3, rtol=1e-12)
  v, f = primitives.icosphere(2)
  np.testing.assert_allclose(mo.voronoi_mass(v, f).sum(), mo.total_area(v, f), rtol=1e-12)
  np.testing.assert_allclose(mo.barycentric_mass(v, f).sum(), mo.total_area(v, f), rtol=1e-12)


def test_vertex_normals_are_area_weighted_and_outward():
  v = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 3.0]])
  f = np.array([[0, 1, 2], [0, 3, 1]])     # unit normals +z and +y, areas 1/2 and 3/2
  n0 = mo.vertex_normals(v, f)[0]
  expect = np.array([0, 0, 1.0]) * 0.5 + np.array([0, 1.0, 0]) * 1.5
  np.testing.assert_allclose(n0, expect / np.linalg.norm(expect), rtol=1e-12)
  vs, fs = primitives.icosphere(2)
  ns = mo.vertex_normals(vs, fs)
  assert np.min(np.sum(ns * vs, axis=1)) > 0.999
  np.testing.assert_allclose(mo.vertex_normals(vs, fs[:, ::-1]), -ns, atol=1e-15)


def test_edge_flaps_topology():
  v, f = primitives.icosphere(1)
  edges, ef, ei = mo.edge_flaps(f)
  assert len(edges) == 3 * len(f) // 2 and np.all(ef >= 0) and np.all(edges[:, 0] < edges[:, 1])
  for e in range(len(edges)):
    i, j = edges[e]
    for s, (a, b) in enumerate([(i, j), (j, i)]):
      tri, c = f[ef[e, s]], ei[e, s]
      assert (tri[(c + 1) % 3], tri[(c + 2) % 3]) == (a, b)    # oriented a -> b, c opposite
  hinges = mo.interior_hinges(f)
  assert hinges.shape == (len(edges), 4) and len({*map(tuple, np.sort(hinges, 1))}) == len(edges)
  # Open grid: boundary edges have one flap, marked -1.
  vg, fg = primitives.grid(4, 3)
  _, efg, _ = mo.edge_flaps(fg)
  assert np.sum(np.any(efg < 0, axis=1)) == 2 * (3 + 2)


def test_edge_flaps_rejects_non_manifold_and_misoriented_faces():
  with pytest.raises(ValueError, match='more than two faces'):
    mo.edge_flaps([[0, 1, 2], [1, 0, 3], [0, 1, 4]])
  with pytest.raises(ValueError, match='same orientation'):
    mo.edge_flaps([[0, 1, 2], [0, 1, 3]])


def test_check_mesh_errors_name_the_problem():
  v, f = primitives.icosahedron()
  with pytest.raises(ValueError, match='outside'):
    mo.cotan_laplacian(v, f + 1)
  with pytest.raises(ValueError, match='repeats a vertex'):
    mo.voronoi_mass(v, [[0, 0, 1]])
  with pytest.raises(ValueError, match='NaN'):
    mo.vertex_normals(np.full_like(v, np.nan), f)


def test_normalize_area():
  v, f = primitives.torus(12, 6)
  vn, scale = mo.normalize_area(3.0 * v + 5.0, f)
  np.testing.assert_allclose(mo.total_area(vn, f), 1.0, rtol=1e-12)
  np.testing.assert_allclose(vn.mean(0), 0.0, atol=1e-12)
  np.testing.assert_allclose(scale, 1.0 / np.sqrt(mo.total_area(3.0 * v, f)), rtol=1e-12)


def test_edge_graph_geodesics_on_a_grid():
  # Unit spacing; each cell's diagonal runs (i, j) -> (i+1, j+1), so the shortest edge path
  # from (0, 0) to (a, b) is √2·min(a, b) + |a − b|.
  nx, ny = 5, 4
  v, f = primitives.grid(nx, ny, size=nx - 1)
  v[:, 1] *= (ny - 1) / (nx - 1)
  d = geodesics.geodesic_distances(v, f, sources=[0])[0]
  a, b = np.meshgrid(np.arange(nx), np.arange(ny), indexing='ij')
  expect = np.sqrt(2) * np.minimum(a, b) + np.abs(a - b)
  np.testing.assert_allclose(d, expect.ravel(), rtol=1e-12)
  full = geodesics.geodesic_distmat(v, f)
  np.testing.assert_allclose(full, full.T, atol=1e-12)
  np.testing.assert_allclose(np.diag(full), 0.0)
  two = np.concatenate([f, f + len(v)])
  with pytest.raises(ValueError, match='2 connected components'):
    geodesics.geodesic_distmat(np.concatenate([v, v + 10]), two)
