r"""Coupled Laplacian anomaly localisation (Bastico et al., CVPR 2024, Sec. 4.1).

  python -m jaxvision.train --config=experiments/couplap/mvtec3d_ad.py \
      --workdir=workdirs/couplap_ad [--config.input.data_dir=/path/to/mvtec_3d_anomaly_detection]

Evaluate-only (total_steps=0): nothing is learned.  Paper settings: 13,000 points,
200 coupled maps, cross fraction 0.5 (the README commands), 3,000-point affine CPD,
plane threshold 0.001, upstream cross-edge semantics.  Without `data_dir` it runs on the
embedded benchmark built from the dm-control dog and rodent meshes (640² scans).

Variants (`:arg`): `tiny` — one class, 5 test scans at 200², 1,500 points, 22 maps
(runs in about a minute on 2 CPU cores); `small` — the claim-at-small-scale setting of
the README (both classes, 300² scans, 3,000 points, 45 maps = the paper's 1.5% ratio);
`upstream` — every upstream-faithful choice for exact comparisons: AMG-LOBPCG with 20
iterations (`pip install jaxvision[upstream]`), FPFH-RANSAC registration (voxel 1 mm)
before the affine CPD, and upstream's pixel mapping (mirrored after a plane-side flip).
"""

from jaxvision.config import parse_arg
from jaxvision.config import with_defaults
import ml_collections


def get_config(arg=None):
  arg = parse_arg(arg, tiny=False, small=False, upstream=False, cross_mode='upstream')
  c = ml_collections.ConfigDict()
  c.project = 'couplap'
  c.seed = 0
  c.total_steps = 0
  c.input = dict(data_dir='', classes=(),
                 embedded_anomaly=dict(classes=('dog', 'rodent'), n_good=3, n_per_defect=3,
                                       resolution=640, seed=0))
  c.anomaly = dict(methods=('coupled', 'euclidean', 'independent', 'histogram'),
                   n_points=13000, maps=200, cross=0.5, cpd_down=3000,
                   cross_mode=arg.cross_mode, threshold=0.001)
  c.evals = dict(ad=dict(type='anomaly', save_maps=True))
  if arg.small:
    c.input.embedded_anomaly.update(resolution=300, n_good=3, n_per_defect=3)
    c.anomaly.update(n_points=3000, maps=45, cpd_down=2000)
  if arg.tiny:
    c.input.classes = ('rodent',)
    c.input.embedded_anomaly.update(classes=('rodent',), n_good=1, n_per_defect=1,
                                    resolution=200)
    c.anomaly.update(n_points=1500, maps=22, cpd_down=1000,
                     methods=('coupled', 'euclidean', 'independent'))
  if arg.upstream:
    c.anomaly.update(solver='upstream', registration='fpfh_ransac', pixel_mapping='upstream')
  return with_defaults(c)
