r"""Pictures of Coupled Laplacian (Bastico et al., CVPR 2024, Figs. 1 and 4 in spirit).

  python -m jaxvision.projects.couplap.pictures --out=/tmp/couplap_pictures [--tiny]

Writes `anomaly.png` (the test cloud coloured by each method's anomaly score next to
the ground truth) and `eigenmaps.png` (the first coupled eigenmaps of the registered
reference and the test cloud side by side — aligned in order and sign — above the
independent eigenmaps of the same clouds, which are not).  Uses the embedded benchmark.
"""

from __future__ import annotations

import os

from absl import app
from absl import flags
import matplotlib
matplotlib.use('Agg')
import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top,wrong-import-position
import numpy as np  # pylint: disable=g-import-not-at-top,wrong-import-position

from jaxvision.data import mvtec3d  # pylint: disable=g-import-not-at-top,wrong-import-position
from jaxvision.projects.couplap import coupled_laplacian as cl  # pylint: disable=g-import-not-at-top,wrong-import-position
from jaxvision.projects.couplap import anomaly as ad  # pylint: disable=g-import-not-at-top,wrong-import-position
from jaxvision.projects.couplap import data as bd  # pylint: disable=g-import-not-at-top,wrong-import-position


def example(*, tiny: bool = True, defect: str = 'bump', cls: str = 'rodent', seed: int = 0):
  """Reference scan, test scan, its ground truth and the registered reference."""
  root = bd.anomaly_benchmark(classes=(cls,), n_good=1, n_per_defect=1,
                              resolution=200 if tiny else 400)
  settings = ad.ADSettings(n_points=1500 if tiny else 5000, maps=22 if tiny else 75,
                           cpd_down=1000 if tiny else 3000)
  ref = ad.load_scan(mvtec3d.read_xyz(mvtec3d.train_good(root, cls)[0].xyz_path), settings,
                     np.random.default_rng(seed))
  sample = next(s for s in mvtec3d.test_samples(root, cls) if s.defect == defect)
  xyz = mvtec3d.read_xyz(sample.xyz_path)
  gt = mvtec3d.read_gt(sample.gt_path, xyz.shape[:2])
  scan = ad.load_scan(xyz, settings, np.random.default_rng(seed + 1))
  source = ad.register(ref.points, scan.points, settings, np.random.default_rng(seed))
  return dict(settings=settings, reference=ref, scan=scan, gt=gt, source=source)


def plot_anomaly(ex, methods=('coupled', 'euclidean', 'independent')):
  """The test cloud (top view) coloured by each method's score, and the ground truth."""
  scan, settings = ex['scan'], ex['settings']
  scores, cross_target, _ = ad.score_pair(ex['source'], scan.points, settings, methods=methods)
  pts = scan.points[cross_target]
  truth = ex['gt'].ravel()[scan.pixel[cross_target]]
  fig, axes = plt.subplots(1, len(methods) + 1, figsize=(4 * (len(methods) + 1), 4))
  axes[0].scatter(pts[:, 0], pts[:, 1], c=truth, s=3, cmap='Reds', vmin=0, vmax=1)
  axes[0].set_title('ground truth')
  for ax, m in zip(axes[1:], methods):
    sc = ax.scatter(pts[:, 0], pts[:, 1], c=scores[m], s=3, cmap='jet')
    ax.set_title(f'{m} score')
    fig.colorbar(sc, ax=ax, shrink=0.7)
  for ax in axes:
    ax.set_aspect('equal')
    ax.axis('off')
  fig.tight_layout()
  return fig


def plot_eigenmaps(ex, shown=(1, 2, 8, 16)):
  """Rows: coupled maps of reference / test, then independent maps of reference / test.

  Low maps of independent graphs often agree; higher ones swap order and sign, which
  the coupling removes.
  """
  src, tgt, settings = ex['source'], ex['scan'].points, ex['settings']
  n_maps = max(shown)
  coupled = cl.coupled_eigenmaps([src, tgt], hub=1, n_maps=n_maps, cross=settings.cross,
                                 cross_mode=settings.cross_mode)
  indep = [cl.independent_eigenmaps(p, n_maps) for p in (src, tgt)]
  n_show = len(shown)
  rows = [('coupled, reference', src, coupled.maps[0]), ('coupled, test', tgt, coupled.maps[1]),
          ('independent, reference', src, indep[0]), ('independent, test', tgt, indep[1])]
  fig, axes = plt.subplots(len(rows), n_show, figsize=(3 * n_show, 3 * len(rows)))
  for r, (name, pts, maps) in enumerate(rows):
    for j in range(n_show):
      ax = axes[r, j]
      ax.scatter(pts[:, 0], pts[:, 1], c=maps[:, shown[j] - 1], s=2, cmap='coolwarm')
      ax.set_title(f'{name}: map {shown[j]}', fontsize=8)
      ax.set_aspect('equal')
      ax.axis('off')
  fig.tight_layout()
  return fig


def main(argv):
  del argv
  out = flags.FLAGS.out
  os.makedirs(out, exist_ok=True)
  ex = example(tiny=flags.FLAGS.tiny)
  plot_anomaly(ex).savefig(os.path.join(out, 'anomaly.png'), dpi=80)
  plot_eigenmaps(ex).savefig(os.path.join(out, 'eigenmaps.png'), dpi=80)
  print(f'wrote {out}/anomaly.png and {out}/eigenmaps.png')


if __name__ == '__main__':
  flags.DEFINE_string('out', '/tmp/couplap_pictures', 'output folder')
  flags.DEFINE_bool('tiny', True, 'small scans (fast on CPU)')
  app.run(main)
