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

  python benchmarks/couplap.py --solver_study [--points=13000 --maps=200 \
      --resolution=640 --study_class=dog --study_per_defect=1] [--out=study.json]

Solver study (issue: upstream's 20-iteration AMG-LOBPCG vs converged eigenmaps): for
every test scan of one embedded class, the SAME registered clouds and cross selection
are solved with `eigsh` (converged) and `solver='upstream'`; per scan the relative
eigenvalue error, the principal cosines between the two kept subspaces, the per-map
cosine of matching columns, the per-point score difference; over the class, AU-PRO@0.3
(all / object pixels) and point AUROC for both solvers.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import resource
import time

from absl import app
from absl import flags
import mfu  # benchmarks/mfu.py
import report  # benchmarks/report.py (the script's folder is on sys.path)

_POINTS = flags.DEFINE_integer('points', 13000, 'anomaly cloud size')
_MAPS = flags.DEFINE_integer('maps', 200, 'anomaly coupled maps')
_RES = flags.DEFINE_integer('resolution', 640, 'embedded scan resolution')
_BSE_POINTS = flags.DEFINE_integer('bse_points', 13000, 'BSE cloud size')
_SKIP_BSE = flags.DEFINE_bool('skip_bse', False, 'only the anomaly pipeline')
_OUT = flags.DEFINE_string('out', None, 'also write the JSON here')
_STUDY = flags.DEFINE_bool('solver_study', False, 'upstream vs converged eigenmaps (doc)')
_STUDY_CLASS = flags.DEFINE_string('study_class', 'dog', 'embedded class of the solver study')
_STUDY_PER_DEFECT = flags.DEFINE_integer('study_per_defect', 1, 'test scans per defect kind')
_STUDY_CPD = flags.DEFINE_integer('study_cpd', 3000, 'affine CPD points in the solver study')


def _anomaly(points, maps, resolution, queue):
  import numpy as np  # pylint: disable=g-import-not-at-top
  from jaxvision.data import mvtec3d  # pylint: disable=g-import-not-at-top
  from jaxvision.projects.couplap import anomaly as ad  # pylint: disable=g-import-not-at-top
  from jaxvision.projects.couplap import data as bd  # pylint: disable=g-import-not-at-top
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
  from jaxvision.projects.couplap import data as bd  # pylint: disable=g-import-not-at-top
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


def _subspace_stats(a, b):
  import numpy as np  # pylint: disable=g-import-not-at-top
  qa, _ = np.linalg.qr(a)
  qb, _ = np.linalg.qr(b)
  cos = np.linalg.svd(qa.T @ qb, compute_uv=False)
  col = np.abs(np.sum(a * b, 0)) / (np.linalg.norm(a, axis=0) * np.linalg.norm(b, axis=0))
  return {'principal_cos_min': float(cos.min()), 'n_principal_cos_below_0.99': int(np.sum(cos < 0.99)),
          'map_cos_mean': float(col.mean()), 'map_cos_min': float(col.min()),
          'n_maps_cos_below_0.99': int(np.sum(col < 0.99))}


def _solver_study(points, maps, resolution, cls, per_defect, cpd_down, queue):
  import numpy as np  # pylint: disable=g-import-not-at-top
  from scipy.spatial import cKDTree  # pylint: disable=g-import-not-at-top
  from jaxvision.data import mvtec3d  # pylint: disable=g-import-not-at-top
  from jaxvision.metrics import anomaly as metrics  # pylint: disable=g-import-not-at-top
  from jaxvision.projects.couplap import anomaly as ad  # pylint: disable=g-import-not-at-top
  from jaxvision.projects.couplap import data as bd  # pylint: disable=g-import-not-at-top
  from jaxvision.projects.couplap import coupled_laplacian as cl  # pylint: disable=g-import-not-at-top
  from jaxvision.projects.couplap import matching_scores as ms  # pylint: disable=g-import-not-at-top
  root = bd.anomaly_benchmark(classes=(cls,), n_good=1, n_per_defect=per_defect,
                              resolution=resolution)
  base = ad.ADSettings(n_points=points, maps=maps, cross=0.5, solver='eigsh', cpd_down=cpd_down)
  ref = ad.load_scan(mvtec3d.read_xyz(mvtec3d.train_good(root, cls)[0].xyz_path), base,
                     np.random.default_rng([0, 0]))
  per_scan, gts, valid, labels = [], [], [], []
  images = {'eigsh': [], 'upstream': []}
  scores = {'eigsh': [], 'upstream': []}
  for i, sample in enumerate(mvtec3d.test_samples(root, cls)):
    xyz = mvtec3d.read_xyz(sample.xyz_path)
    scan = ad.load_scan(xyz, base, np.random.default_rng([0, i + 1]))
    rng = np.random.default_rng(i)
    source = ad.register(ref.points, scan.points, base, rng)
    cross_t = cl.select_cross_points(len(scan.points), base.cross, rng)
    cross_s = cKDTree(source).query(scan.points[cross_t])[1]
    res, sc, secs = {}, {}, {}
    for solver in ('eigsh', 'upstream'):
      t0 = time.perf_counter()
      res[solver] = cl.coupled_eigenmaps([source, scan.points], hub=1, n_maps=maps,
                                         cross_target=cross_t, cross_source=[cross_s],
                                         solver=solver)
      secs[solver] = time.perf_counter() - t0
      sc[solver] = ms.cosine_distance_rows(res[solver].maps[0][cross_s],
                                           res[solver].maps[1][cross_t])
      images[solver].append(ad.scores_to_image(sc[solver], scan.pixel[cross_t], scan.shape,
                                               scan.sampling_factor))
      scores[solver].append(sc[solver])
    full = {s: np.concatenate(r.maps) for s, r in res.items()}
    lam_c, lam_u = res['eigsh'].eigenvalues, res['upstream'].eigenvalues
    diff = np.abs(sc['upstream'] - sc['eigsh'])
    per_scan.append({'scan': f'{sample.defect}/{sample.name}', 'nodes': int(len(full['eigsh'])),
                     'eigsh_s': secs['eigsh'], 'upstream_s': secs['upstream'],
                     'eigenvalue_rel_err_max': float(np.max(np.abs(lam_u - lam_c) / lam_c)),
                     'eigenvalue_rel_err_median': float(np.median(np.abs(lam_u - lam_c) / lam_c)),
                     **_subspace_stats(full['eigsh'], full['upstream']),
                     'score_absdiff_mean': float(diff.mean()), 'score_absdiff_max': float(diff.max()),
                     'score_corr': float(np.corrcoef(sc['eigsh'], sc['upstream'])[0, 1])})
    gt = mvtec3d.read_gt(sample.gt_path, xyz.shape[:2])
    gts.append(gt)
    valid.append(scan.foreground_mask())
    labels.append(gt.ravel()[scan.pixel[cross_t]])
    print(per_scan[-1], flush=True)
  labels = np.concatenate(labels)
  summary = {s: {'au_pro': metrics.au_pro(gts, images[s], 0.3),
                 'fg_au_pro': metrics.au_pro(gts, images[s], 0.3, valid=valid),
                 'point_auroc': metrics.auroc(labels, np.concatenate(scores[s]))}
             for s in images}
  queue.put({'class': cls, 'points': points, 'maps': maps, 'resolution': resolution,
             'per_scan': per_scan, 'metrics': summary})


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
  result = {'benchmark': 'couplap', **report.machine(),
            # The time goes to scipy (ARPACK eigsh, sparse solves), outside XLA: no cost
            # analysis, so no FLOPs/MFU; the matmul peak is recorded for reference.
            'flops': None, 'matmul_peak_flops_per_s': mfu.measure_matmul_peak()}
  if _STUDY.value:
    result['solver_study'] = _run(_solver_study, _POINTS.value, _MAPS.value, _RES.value,
                                  _STUDY_CLASS.value, _STUDY_PER_DEFECT.value, _STUDY_CPD.value)
    result['load_average_after'] = os.getloadavg()
    report.emit(result, _OUT.value)
    return
  result['anomaly'] = _run(_anomaly, _POINTS.value, _MAPS.value, _RES.value)
  if not _SKIP_BSE.value:
    result['bse'] = _run(_bse, _BSE_POINTS.value)
  result['load_average_after'] = os.getloadavg()
  report.emit(result, _OUT.value)


if __name__ == '__main__':
  app.run(main)
