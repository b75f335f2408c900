"""Evaluators: anomaly localisation (AU-PRO@0.3, AUROC) and bone side estimation accuracy.

Coupled Laplacian (Bastico et al., CVPR 2024), Tables 1–2 protocol:
- 'anomaly': for every class, the first `train/good` scan is the reference; every test
  scan is pre-processed, the reference registered onto it, scored by each method, the
  scores put back on the image grid; per class and method: AU-PRO integrated to FPR 0.3
  over all test images (MVTec protocol, all pixels), the same restricted to the object's
  pixels (`fg_au_pro`, more telling when the object is small in the frame), and the
  point AUROC over the scored points; then the mean over classes;
- 'bse': every ordered pair (source, target) of distinct instances of a bone class;
  accuracy of "same side" per method and class, then the mean.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import os

from absl import logging
import numpy as np

from jaxvision.data import meshes
from jaxvision.data import mvtec3d
from jaxvision.metrics import anomaly as metrics
from jaxvision.projects.couplap import anomaly
from jaxvision.projects.couplap import data as benchmark_data
from jaxvision.projects.couplap import bone_side

DEFAULTS = {'type': 'anomaly', 'every': 0, 'save_maps': False}


def anomaly_settings(cfg) -> anomaly.ADSettings:
  names = {f.name for f in dataclasses.fields(anomaly.ADSettings)}
  return anomaly.ADSettings(**{k: v for k, v in cfg.items() if k in names})


def bse_settings(cfg) -> bone_side.BSESettings:
  names = {f.name for f in dataclasses.fields(bone_side.BSESettings)}
  return bone_side.BSESettings(**{k: v for k, v in cfg.items() if k in names})


def anomaly_root(input_cfg) -> str:
  if input_cfg.data_dir:
    return input_cfg.data_dir
  return benchmark_data.anomaly_benchmark(root=input_cfg.cache_dir or None,
                                          **dict(input_cfg.embedded_anomaly))


def bse_root(input_cfg) -> str:
  if input_cfg.bse_dir:
    return input_cfg.bse_dir
  return benchmark_data.bse_benchmark(root=input_cfg.cache_dir or None,
                                      **dict(input_cfg.embedded_bse))


class AnomalyEvaluator:
  """`run(params)` -> {'<class>/<method>/au_pro', ..., 'mean/<method>/au_pro', ...}."""

  DEFAULTS = DEFAULTS

  def __init__(self, name, cfg, ctx, predict_fns=None):
    del predict_fns   # the pipeline computes its scores itself (no trained model)
    self.name, self.every = name, int(cfg.every)
    self._save = bool(cfg.save_maps)
    self._config = ctx.config
    self._workdir = ctx.workdir

  def run(self, params):
    del params   # parameter-free method
    c = self._config
    settings = anomaly_settings(c.anomaly)
    methods = tuple(c.anomaly.methods)
    root = anomaly_root(c.input)
    classes = list(c.input.classes) or mvtec3d.list_classes(root)
    out, per_class = {}, {m: {'au_pro': [], 'fg_au_pro': [], 'point_auroc': []} for m in methods}
    for cls in classes:
      result = evaluate_class(root, cls, settings, methods, seed=int(c.seed))
      for m in methods:
        for key, val in result[m].items():
          out[f'{cls}/{m}/{key}'] = val
          per_class[m][key].append(val)
      if self._save and self._workdir:
        _save_json(self._workdir, f'{self.name}_{cls}.json', result)
    for m in methods:
      for key, vals in per_class[m].items():
        out[f'mean/{m}/{key}'] = float(np.mean(vals))
    return out


def evaluate_class(root: str, cls: str, settings: anomaly.ADSettings, methods, *,
                   seed: int = 0, max_samples: int | None = None) -> dict:
  """Per method: au_pro, fg_au_pro, point_auroc over the class's test scans."""
  ref_sample = mvtec3d.train_good(root, cls)[0]
  reference = anomaly.load_scan(mvtec3d.read_xyz(ref_sample.xyz_path), settings,
                                np.random.default_rng([seed, 0]))
  gts, valid, labels = [], [], []
  images = {m: [] for m in methods}
  scores = {m: [] for m in methods}
  samples = mvtec3d.test_samples(root, cls)[:max_samples]
  for i, s in enumerate(samples):
    xyz = mvtec3d.read_xyz(s.xyz_path)
    gt = mvtec3d.read_gt(s.gt_path, xyz.shape[:2])
    scan = anomaly.load_scan(xyz, settings, np.random.default_rng([seed, i + 1]))
    imgs, sc, pixels = anomaly.localize(reference, scan, settings, methods=methods,
                                        seed=seed * 100003 + i)
    gts.append(gt)
    valid.append(scan.foreground_mask())
    labels.append(gt.ravel()[pixels])
    for m in methods:
      images[m].append(imgs[m])
      scores[m].append(sc[m])
    logging.info('couplap anomaly %s %s/%s done (%d/%d)', cls, s.defect, s.name, i + 1,
                 len(samples))
  labels = np.concatenate(labels)
  result = {}
  for m in methods:
    result[m] = {
        'au_pro': metrics.au_pro(gts, images[m], 0.3),
        'fg_au_pro': metrics.au_pro(gts, images[m], 0.3, valid=valid),
        'point_auroc': metrics.auroc(labels, np.concatenate(scores[m])),
    }
  return result


class BSEEvaluator:
  """`run(params)` -> {'<bone>/<method>/accuracy', 'mean/<method>/accuracy', 'pairs'}."""

  DEFAULTS = dict(DEFAULTS, type='bse')

  def __init__(self, name, cfg, ctx, predict_fns=None):
    del predict_fns
    self.name, self.every = name, int(cfg.every)
    self._save = bool(cfg.save_maps)
    self._config = ctx.config
    self._workdir = ctx.workdir

  def run(self, params):
    del params
    c = self._config
    settings = bse_settings(c.bse)
    methods = tuple(c.bse.methods)
    root = bse_root(c.input)
    bones = list(c.input.bones)
    out, acc, n_pairs = {}, {m: [] for m in methods}, 0
    for bone in bones:
      result = evaluate_bone(root, bone, settings, methods, seed=int(c.seed))
      n_pairs += result['pairs']
      for m in methods:
        out[f'{bone}/{m}/accuracy'] = result[m]
        acc[m].append(result[m])
    for m in methods:
      out[f'mean/{m}/accuracy'] = float(np.mean(acc[m]))
    out['pairs'] = float(n_pairs)
    return out


def evaluate_bone(root: str, bone: str, settings: bone_side.BSESettings, methods, *,
                  seed: int = 0) -> dict:
  instances = benchmark_data.bse_instances(root, bone)
  rng = np.random.default_rng(seed)
  clouds = {p: bone_side.limit_points(meshes.read_point_cloud(p), settings.max_points, rng)
            for p, _ in instances}
  correct = {m: [] for m in methods}
  pairs = list(itertools.permutations(instances, 2))
  for i, ((ps, side_s), (pt, side_t)) in enumerate(pairs):
    pred = bone_side.predict_same_side(clouds[ps], clouds[pt], settings, methods=methods,
                                       seed=seed + i)
    for m in methods:
      correct[m].append(pred[m][0] == (side_s == side_t))
    logging.info('couplap BSE %s pair %d/%d (%s->%s): %s', bone, i + 1, len(pairs), side_s,
                 side_t, {m: (bool(pred[m][0]), round(pred[m][1], 4), round(pred[m][2], 4))
                          for m in methods})
  result = {m: metrics.pair_accuracy(correct[m], np.ones(len(correct[m]), bool))
            for m in methods}
  result['pairs'] = len(correct[methods[0]])
  return result


def _save_json(workdir, name, obj):
  os.makedirs(os.path.join(workdir, 'couplap'), exist_ok=True)
  with open(os.path.join(workdir, 'couplap', name), 'w') as fh:
    json.dump(obj, fh, indent=1, default=float)


# The project's own `config.evals` types (jaxvision.evaluators builds them).
EVALUATORS = {'anomaly': AnomalyEvaluator, 'bse': BSEEvaluator}
