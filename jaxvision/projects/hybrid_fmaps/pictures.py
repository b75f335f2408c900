r"""Pictures of Hybrid Functional Maps (Bastian et al., CVPR 2024, Figs. 1-3 in spirit).

  python -m jaxvision.projects.hybrid_fmaps.pictures --out=/tmp/hfm_pictures \
      [--which=humans|dogs] [--tiny]

Writes, for one pair of the embedded MakeHuman (`benchmark.py`) or dog (`animals.py`)
benchmark:

- `<which>_eigenfunctions.png`: the source mesh coloured by a few LBO eigenfunctions (top row)
  and elastic thin-shell eigenfunctions (bottom row; `geometry.elastic`, projected on
  the vertex normals).  The elastic ones concentrate on creases and high-curvature parts
  (Sec. 4: "crease-aware"), the LBO ones are smooth and global;
- `<which>_transfer.png`: a correspondence as colour transfer — the source coloured by its
  normalised coordinates, and the target coloured through the true map (via the
  template `.vts`), the LBO ZoomOut map and the hybrid ZoomOut map (`axiomatic.py`);
  each title gives the mean geodesic error (×100, √area units).

Rendering: matplotlib 3D (`Poly3DCollection`, per-face colour = mean of its vertices'),
Agg backend, the shape's up axis (+y for MakeHuman, +z for the dog) drawn vertical.
"""

from __future__ import annotations

import os

from absl import app
from absl import flags
import matplotlib
matplotlib.use('Agg')
import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top,wrong-import-position
from mpl_toolkits.mplot3d.art3d import Poly3DCollection  # pylint: disable=g-import-not-at-top,wrong-import-position
import numpy as np  # pylint: disable=g-import-not-at-top,wrong-import-position

from jaxvision.geometry import geodesics  # pylint: disable=g-import-not-at-top,wrong-import-position
from jaxvision.geometry import mesh_operators  # pylint: disable=g-import-not-at-top,wrong-import-position
from jaxvision.metrics import geodesic  # pylint: disable=g-import-not-at-top,wrong-import-position
from jaxvision.projects.hybrid_fmaps import animals  # pylint: disable=g-import-not-at-top,wrong-import-position
from jaxvision.projects.hybrid_fmaps import axiomatic  # pylint: disable=g-import-not-at-top,wrong-import-position
from jaxvision.projects.hybrid_fmaps import benchmark  # pylint: disable=g-import-not-at-top,wrong-import-position
from jaxvision.projects.hybrid_fmaps import data  # pylint: disable=g-import-not-at-top,wrong-import-position
from jaxvision.projects.hybrid_fmaps import evaluators  # pylint: disable=g-import-not-at-top,wrong-import-position

# rotations taking the mesh's up axis to the plot's z (front = -plot y, seen at azim -90)
_UP = {'y': np.array([[1.0, 0, 0], [0, 0, 1], [0, -1, 0]]),   # (x, y, z) -> (x, -z, y)
       'z': np.eye(3)}


_BENCHMARKS = {  # name: (layout builder, default pair, up axis)
    'humans': (benchmark.ensure_benchmark, ('body_00', 'body_01'), 'y'),
    'dogs': (animals.ensure_benchmark, ('dog_00', 'dog_01'), 'z'),
}


def example(*, tiny: bool = True, which: str = 'humans', pair=None,
            cache_dir: str | None = None):
  """Two benchmark shapes (read back from the ULRSSM layout), their bases and the maps.

  which: 'humans' (MakeHuman, `benchmark.py`) or 'dogs' (dm-control, `animals.py`);
  tiny: 200 coarse vertices, 20 LBO + 10 elastic; else 500 vertices, 35 + 15 (tiny.py).
  """
  if which not in _BENCHMARKS:
    raise ValueError(f'which={which!r}; expected one of {sorted(_BENCHMARKS)}')
  build, default_pair, up = _BENCHMARKS[which]
  pair = tuple(pair or default_pair)
  n, (k_lbo, k_el, n_eig) = (200, (20, 10, 20)) if tiny else (500, (35, 15, 30))
  root = build(cache_dir, n, pair)
  x, y = data.load_shape(root, pair[0]), data.load_shape(root, pair[1])
  out = dict(source=x, target=y, maps={}, up=up)
  for basis in axiomatic.BASES:
    s = axiomatic.Settings(basis=basis, k_lbo=k_lbo, k_elastic=k_el, n_eig_descr=n_eig)
    px, py = axiomatic.prepare(x.verts, x.faces, s), axiomatic.prepare(y.verts, y.faces, s)
    out['maps'][basis] = axiomatic.match_prepared(px, py, s)
    if basis == 'hybrid':
      out['lbo'], out['elastic'] = px.lbo, px.elastic
  out['maps']['truth'] = evaluators.perturbed_truth(x, y, 0.0, seed=0)
  dist = geodesics.geodesic_distmat(x.verts, x.faces)
  dist /= np.sqrt(mesh_operators.total_area(x.verts, x.faces))
  out['errors'] = {b: 100.0 * geodesic.geodesic_error(dist, p[y.corr], x.corr,
                                                      np.linspace(0, 0.2, 5))['mean_error']
                   for b, p in out['maps'].items()}
  return out


def draw_mesh(ax, verts, faces, values=None, colors=None, *, up: str = 'y', cmap='coolwarm',
              title: str = ''):
  """One mesh on a 3D axis, coloured by per-vertex `values` (diverging, symmetric
  around 0, clipped at the 98th percentile of |values| so localised functions show) or
  per-vertex RGB `colors` (n, 3) in [0, 1]."""
  if up not in _UP:
    raise ValueError(f'up={up!r}; expected one of {sorted(_UP)}')
  v = np.asarray(verts, np.float64) @ _UP[up]
  f = np.asarray(faces)
  if (values is None) == (colors is None):
    raise ValueError('pass exactly one of values= (n,) or colors= (n, 3)')
  if values is not None:
    values = np.asarray(values, np.float64)
    if values.shape != (len(v),):
      raise ValueError(f'values: expected ({len(v)},), got {values.shape}')
    lim = float(np.percentile(np.abs(values), 98)) or float(np.max(np.abs(values))) or 1.0
    face_rgb = plt.get_cmap(cmap)(np.clip((values[f].mean(axis=1) / lim + 1.0) / 2.0, 0, 1))
  else:
    colors = np.asarray(colors, np.float64)
    if colors.shape != (len(v), 3):
      raise ValueError(f'colors: expected ({len(v)}, 3), got {colors.shape}')
    face_rgb = np.clip(colors[f].mean(axis=1), 0.0, 1.0)
  ax.add_collection3d(Poly3DCollection(v[f], facecolors=face_rgb, edgecolors='none',
                                       linewidths=0.0))
  lo, hi = v.min(axis=0), v.max(axis=0)
  c, r = (lo + hi) / 2, float(np.max(hi - lo)) / 2
  ax.set_xlim(c[0] - r, c[0] + r)
  ax.set_ylim(c[1] - r, c[1] + r)
  ax.set_zlim(c[2] - r, c[2] + r)
  ax.set_box_aspect((1, 1, 1), zoom=1.5)
  ax.view_init(elev=10, azim=-90)
  ax.set_axis_off()
  ax.set_title(title, fontsize=9)


def coordinate_colors(verts) -> np.ndarray:
  """(n, 3) RGB in [0, 1]: each coordinate min-max normalised (the usual transfer colours)."""
  v = np.asarray(verts, np.float64)
  lo, hi = v.min(axis=0), v.max(axis=0)
  return (v - lo) / np.where(hi > lo, hi - lo, 1.0)


def plot_eigenfunctions(verts, faces, lbo, elastic, shown=(1, 2, 5, 9), *, up: str = 'y'):
  """2 × len(shown) figure: LBO (top) and elastic (bottom) eigenfunctions `shown`."""
  for name, b in (('lbo', lbo), ('elastic', elastic)):
    if max(shown) >= b.evecs.shape[1]:
      raise ValueError(f'shown={shown}: the {name} basis has only {b.evecs.shape[1]} functions')
  fig = plt.figure(figsize=(2.6 * len(shown), 5.6))
  for row, (name, b) in enumerate((('LBO', lbo), ('elastic', elastic))):
    for col, i in enumerate(shown):
      ax = fig.add_subplot(2, len(shown), row * len(shown) + col + 1, projection='3d')
      draw_mesh(ax, verts, faces, values=b.evecs[:, i], up=up,
                title=f'{name} φ{i}  (λ={float(b.evals[i]):.3g})')
  fig.tight_layout()
  return fig


def plot_transfer(source, target, maps: dict, errors: dict | None = None, *, up: str = 'y'):
  """Source coloured by its coordinates; target coloured through each map (y -> x)."""
  src = coordinate_colors(source.verts)
  fig = plt.figure(figsize=(2.8 * (len(maps) + 1), 3.4))
  ax = fig.add_subplot(1, len(maps) + 1, 1, projection='3d')
  draw_mesh(ax, source.verts, source.faces, colors=src, up=up, title='source')
  for col, (name, p2p) in enumerate(maps.items(), 2):
    p2p = np.asarray(p2p)
    if p2p.shape != (len(target.verts),) or p2p.min() < 0 or p2p.max() >= len(source.verts):
      raise ValueError(f'map {name!r}: expected ({len(target.verts)},) source indices')
    title = name if errors is None else f'{name}: error {errors[name]:.1f}'
    ax = fig.add_subplot(1, len(maps) + 1, col, projection='3d')
    draw_mesh(ax, target.verts, target.faces, colors=src[p2p], up=up, title=title)
  fig.tight_layout()
  return fig


def write_pictures(out: str, *, tiny: bool = True, which: str = 'humans',
                   cache_dir: str | None = None) -> list[str]:
  ex = example(tiny=tiny, which=which, cache_dir=cache_dir)
  os.makedirs(out, exist_ok=True)
  paths = [os.path.join(out, f'{which}_eigenfunctions.png'),
           os.path.join(out, f'{which}_transfer.png')]
  figs = [plot_eigenfunctions(ex['source'].verts, ex['source'].faces, ex['lbo'], ex['elastic'],
                              up=ex['up']),
          plot_transfer(ex['source'], ex['target'], ex['maps'], ex['errors'], up=ex['up'])]
  for fig, path in zip(figs, paths):
    fig.savefig(path, dpi=110)
    plt.close(fig)
  return paths


def main(argv):
  del argv
  for p in write_pictures(flags.FLAGS.out, tiny=flags.FLAGS.tiny, which=flags.FLAGS.which):
    print('wrote', p)


if __name__ == '__main__':
  flags.DEFINE_string('out', 'hfm_pictures', 'output folder')
  flags.DEFINE_enum('which', 'humans', sorted(_BENCHMARKS), 'embedded benchmark')
  flags.DEFINE_bool('tiny', False, '200-vertex bodies and 20 + 10 functions (seconds)')
  app.run(main)
