r"""Coupled Laplacian pipelines: time and peak memory at paper scale; prints one JSON object.

  python benchmarks/couplap.py [--points=13000] [--maps=200] [--bse_points=13000] \
      [--skip_bse] [--out=result.json]

Anomaly: one embedded-benchmark test scan (dog, 640² scan) against the good reference:
pre-processing, global registration + ICP, affine CPD (3,000 points), 13,000-point
clouds coupled with cross fraction 0.5, 200 maps (eigsh shift-invert), cosine scores.
BSE: one ordered pair of 13,000-point dog femurs: Fiedler scaling, two registrations,
three coupled graphs, 20 maps, Grassmann distances.  Each stage runs in a fresh process
so its peak resident memory (ru_maxrss) is its own.  Wall times on a shared CPU are
noisy: the JSON records the load average.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import resource
import time

from absl import app
from absl import flags
import report  # benchmarks/report.py (the script's folder is on sys.path)

_POINTS = flags.DEFINE_integer('points', 13000, 'anomaly cloud size')
_MAPS = flags.DEFINE_integer('maps', 200, 'anomaly coupled maps')
_RES = flags.DEFINE_integer('resolution', 640, 'embedded scan resolution')
_BSE_POINTS = flags.DEFINE_integer('bse_points', 13000, 'BSE cloud size')
_SKIP_BSE = flags.DEFINE_bool('skip_bse', False, 'only the anomaly pipeline')
_OUT = flags.DEFINE_string('out', None, 'also write the JSON here')


def _anomaly(points, maps, resolution, queue):
  import numpy as np  # pylint: disable=g-import-not-at-top
  from jaxvision.data import mvtec3d  # pylint: disable=g-import-not-at-top
  from jaxvision.projects.couplap import anomaly as ad  # pylint: disable=g-import-not-at-top
  from jaxvision.projects.couplap import benchmark_data as bd  # pylint: disable=g-import-not-at-top
  root = bd.anomaly_benchmark(classes=('dog',), n_good=0, n_per_defect=1, defects=('bump',),
                              resolution=resolution)
  settings = ad.ADSettings(n_points=points, maps=maps, cross=0.5, solver='eigsh')
  times = {}
  t0 = time.perf_counter()
  ref = ad.load_scan(mvtec3d.read_xyz(mvtec3d.train_good(root, 'dog')[0].xyz_path), settings,
                     np.random.default_rng(0))
  scan = ad.load_scan(mvtec3d.read_xyz(mvtec3d.test_samples(root, 'dog')[0].xyz_path),
                      settings, np.random.default_rng(1))
  times['preprocess_s'] = time.perf_counter() - t0
  t0 = time.perf_counter()
  rng = np.random.default_rng(0)
  source = ad.register(ref.points, scan.points, settings, rng)
  times['registration_s'] = time.perf_counter() - t0
  t0 = time.perf_counter()
  ad.score_pair(source, scan.points, settings, methods=('coupled',), rng=rng)
  times['coupled_eigenmaps_and_scores_s'] = time.perf_counter() - t0
  times['total_s'] = sum(times.values())
  queue.put({'points': [len(ref.points), len(scan.points)], 'maps': maps, **times,
             'peak_rss_bytes': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024})


def _bse(points, queue):
  import numpy as np  # pylint: disable=g-import-not-at-top
  from jaxvision.data import meshes  # pylint: disable=g-import-not-at-top
  from jaxvision.projects.couplap import benchmark_data as bd  # pylint: disable=g-import-not-at-top
  from jaxvision.projects.couplap import bone_side as bs  # pylint: disable=g-import-not-at-top
  root = bd.bse_benchmark(bones=('Femoris',), n_per_side=1, n_points=points)
  (p_r, _), (p_l, _) = bd.bse_instances(root, 'Femoris')
  settings = bs.BSESettings(max_points=points, maps=20, cross=0.2, solver='eigsh')
  source, target = meshes.read_point_cloud(p_r), meshes.read_point_cloud(p_l)
  t0 = time.perf_counter()
  out = bs.predict_same_side(source, target, settings, methods=('spectral',))
  total = time.perf_counter() - t0
  queue.put({'points': [len(source), len(target)], 'maps': 20, 'total_s': total,
             'same_side': bool(out['spectral'][0]),
             'peak_rss_bytes': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024})


def _run(target, *args):
  ctx = mp.get_context('spawn')
  queue = ctx.Queue()
  proc = ctx.Process(target=target, args=(*args, queue))
  proc.start()
  result = queue.get()
  proc.join()
  return result


def main(argv):
  del argv
  result = {'benchmark': 'couplap', **report.machine()}
  result['anomaly'] = _run(_anomaly, _POINTS.value, _MAPS.value, _RES.value)
  if not _SKIP_BSE.value:
    result['bse'] = _run(_bse, _BSE_POINTS.value)
  result['load_average_after'] = os.getloadavg()
  report.emit(result, _OUT.value)


if __name__ == '__main__':
  app.run(main)
