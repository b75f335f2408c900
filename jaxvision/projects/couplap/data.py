"""The embedded benchmarks, built from REAL meshes shipped by dm-control.

MVTec 3D-AD and the BSE bone datasets cannot be shipped (licences, size).  In their
place, on first use, under a cache folder keyed by the settings:

Anomaly localisation (MVTec 3D-AD layout, read back by `jaxvision.data.mvtec3d`):
  classes 'dog' (dm_control `dog_skin.skn`, 17k unique vertices) and 'rodent'
  (`rodent_walker_skin.skn`, 5.4k) lying on their side on a table, scaled to 10 cm;
  `train/good/000` is a scan in the rest pose; every test scan re-samples the surface,
  places the object with a random yaw (any angle), tilt (<= 3°) and shift, adds depth
  noise and dropped pixels; `test/{bump,dent,crack,hole}` carry one injected anomaly on
  the visible surface and a ground-truth png; `test/good` none.

Bone side estimation (upstream layout `<Bone>_<L|R>/<id>.ply`, read by
`jaxvision.data.meshes.read_point_cloud`): the dog's left and right long bones
(`BONEFemoris_L.stl` ...).  dm_control's right bones are exact mirror images of the left
ones (max vertex distance after mirroring y: 7e-8), so the two sides differ by
chirality only.  Each instance applies a random smooth deformation (anisotropic scale
± `scale_jitter`, plus Gaussian-RBF displacements of `warp` × length: the "another
subject" variation), an isotropic body-size factor 1 ± `size_jitter`, a random rotation
(any) and translation, and samples `n_points` surface points anew.
"""

from __future__ import annotations

import hashlib
import json
import os

import numpy as np

from jaxvision.data import meshes
from jaxvision.data import mvtec3d
from jaxvision.data import scan_synthesis as scans

DOG_ASSETS = 'suite/dog_assets'
OBJECTS = {
    'dog': 'suite/dog_assets/dog_skin.skn',
    'rodent': 'locomotion/walkers/assets/rodent_walker_skin.skn',
}
BONES = ('Femoris', 'Tibia', 'Fibula', 'humerus', 'Radius', 'Ulna', 'Scapula')


def cache_root() -> str:
  return os.path.join(os.environ.get('JAXVISION_CACHE', os.path.expanduser('~/.cache/jaxvision')),
                      'couplap')


def _key(settings: dict) -> str:
  return hashlib.sha1(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:12]


def object_mesh(name: str, size: float = 0.1):
  """Unique-vertex mesh lying on its side, centred, longest extent = `size`."""
  if name not in OBJECTS:
    raise ValueError(f'unknown benchmark object {name!r}; known: {sorted(OBJECTS)}')
  v, f = meshes.read_mesh(meshes.packaged_file('dm_control', OBJECTS[name]))
  v, f = meshes.unique_vertices(v, f)
  v = v @ scans.rotation_about([1, 0, 0], np.pi / 2).T
  v = v - 0.5 * (v.min(0) + v.max(0))
  return v * (size / np.max(np.ptp(v, axis=0))), f


def _scan(v, f, rng, cfg, *, rest: bool, kind: str | None):
  if not rest and (cfg['scale_jitter'] > 0 or cfg['warp'] > 0):
    v = scans.smooth_deformation(v, rng, scale_jitter=cfg['scale_jitter'], warp=cfg['warp'])
  half = 0.6 * np.max(np.linalg.norm(v[:, :2] - v[:, :2].mean(0), axis=1)) * 2 + cfg['max_shift']
  pix = 2 * half / cfg['resolution']
  area = 0.5 * np.sum(np.linalg.norm(np.cross(v[f[:, 1]] - v[f[:, 0]], v[f[:, 2]] - v[f[:, 0]]), axis=1))
  sample = scans.sample_surface(v, f, int(cfg['samples_per_pixel'] * area / pix ** 2), rng)
  disp = np.zeros(len(sample.points))
  size = np.max(np.ptp(v, axis=0))
  if kind is not None:
    # Centre: a sample visible from above in the rest pose, facing up.
    _, vis_idx, _ = scans.render_scan(scans.place(sample.points, np.eye(3), np.zeros(3)),
                                      resolution=cfg['resolution'], half_width=half,
                                      values=np.arange(len(sample.points)) + 1)
    cand = vis_idx[vis_idx > 0].astype(int) - 1
    cand = cand[sample.normals[cand, 2] > 0.6]
    centre_i = rng.choice(cand)
    n = sample.normals[centre_i]
    direction = np.cross(n, rng.normal(size=3))
    sample, disp = scans.inject_anomaly(sample, kind, sample.points[centre_i], direction,
                                        cfg['radius'] * size, cfg['depth'] * size)
  if rest:
    rot, shift = np.eye(3), np.zeros(3)
  else:
    rot, shift = scans.random_rest_pose(rng, max_tilt_deg=cfg['max_tilt_deg'],
                                        max_shift=cfg['max_shift'])
  pts = scans.place(sample.points, rot, shift)
  xyz, val, _ = scans.render_scan(pts, resolution=cfg['resolution'], half_width=half,
                                  values=np.abs(disp), noise=cfg['noise'] * size,
                                  dropout=cfg['dropout'], rng=rng)
  gt = val >= cfg['mask_fraction'] * cfg['depth'] * size
  return xyz, gt


def anomaly_benchmark(*, classes=('dog', 'rodent'), n_good: int = 3, n_per_defect: int = 3,
                      defects=scans.ANOMALY_KINDS, resolution: int = 224, seed: int = 0,
                      root: str | None = None, radius: float = 0.06, depth: float = 0.02,
                      noise: float = 0.0005, dropout: float = 0.002,
                      max_tilt_deg: float = 3.0, max_shift: float = 0.005,
                      samples_per_pixel: float = 6.0, mask_fraction: float = 0.1,
                      scale_jitter: float = 0.03, warp: float = 0.02) -> str:
  """Writes (once) and returns the root of the embedded MVTec 3D-AD-layout benchmark.

  radius/depth/noise are fractions of the object size (10 cm).
  """
  cfg = dict(classes=list(classes), n_good=n_good, n_per_defect=n_per_defect,
             defects=list(defects), resolution=resolution, seed=seed, radius=radius,
             depth=depth, noise=noise, dropout=dropout, max_tilt_deg=max_tilt_deg,
             max_shift=max_shift, samples_per_pixel=samples_per_pixel,
             mask_fraction=mask_fraction, scale_jitter=scale_jitter, warp=warp, version=1)
  out = os.path.join(root or cache_root(), 'mvtec3d_' + _key(cfg))
  done = os.path.join(out, 'settings.json')
  if os.path.exists(done):
    return out
  for c_i, cls in enumerate(classes):
    v, f = object_mesh(cls)
    rng = np.random.default_rng([seed, c_i])
    xyz, _ = _scan(v, f, rng, cfg, rest=True, kind=None)
    mvtec3d.write_sample(out, cls, 'train', 'good', '000', xyz)
    jobs = [('good', None)] * n_good + [(d, d) for d in defects for _ in range(n_per_defect)]
    counters: dict = {}
    for defect, kind in jobs:
      i = counters[defect] = counters.get(defect, -1) + 1
      xyz, gt = _scan(v, f, rng, cfg, rest=False, kind=kind)
      mvtec3d.write_sample(out, cls, 'test', defect, f'{i:03d}', xyz, gt)
  with open(done, 'w') as fh:
    json.dump(cfg, fh, indent=1)
  return out


def bse_benchmark(*, bones=BONES, n_per_side: int = 3, n_points: int = 2000, seed: int = 0,
                  scale_jitter: float = 0.05, warp: float = 0.03, size_jitter: float = 0.1,
                  root: str | None = None) -> str:
  """Writes (once) `<root>/<Bone>_<L|R>/<id>.ply` instances; returns the root."""
  cfg = dict(bones=list(bones), n_per_side=n_per_side, n_points=n_points, seed=seed,
             scale_jitter=scale_jitter, warp=warp, size_jitter=size_jitter, version=1)
  out = os.path.join(root or cache_root(), 'bse_' + _key(cfg))
  done = os.path.join(out, 'settings.json')
  if os.path.exists(done):
    return out
  for b_i, bone in enumerate(bones):
    for s_i, side in enumerate('LR'):
      path = meshes.packaged_file('dm_control', f'{DOG_ASSETS}/BONE{bone}_{side}.stl')
      v, f = meshes.unique_vertices(*meshes.read_mesh(path))
      rng = np.random.default_rng([seed, b_i, s_i])
      for i in range(n_per_side):
        w = scans.smooth_deformation(v, rng, scale_jitter=scale_jitter, warp=warp)
        w = w * rng.uniform(1.0 - size_jitter, 1.0 + size_jitter)   # another body size
        pts = scans.sample_surface(w, f, n_points, rng).points
        q, r = np.linalg.qr(rng.normal(size=(3, 3)))
        rot = q * np.sign(np.diag(r))
        if np.linalg.det(rot) < 0:
          rot[:, 0] *= -1
        pts = (pts - pts.mean(0)) @ rot.T + rng.normal(size=3) * 0.05
        meshes.write_ply(os.path.join(out, f'{bone}_{side}', f'{i:03d}.ply'), pts)
  with open(done, 'w') as fh:
    json.dump(cfg, fh, indent=1)
  return out


def bse_instances(root: str, bone: str):
  """[(path, side)] of one bone class, sorted (right side first, as upstream)."""
  out = []
  for side in 'RL':
    folder = os.path.join(root, f'{bone}_{side}')
    if not os.path.isdir(folder):
      raise FileNotFoundError(f'no {bone}_{side}/ folder under {root}')
    out += [(os.path.join(folder, f), side) for f in sorted(os.listdir(folder))
            if f.endswith(('.ply', '.obj', '.stl'))]
  return out
