"""`type='axiomatic'`: mean geodesic error and PCK of the axiomatic matching pipeline.

Hybrid Functional Maps (Bastian et al., CVPR 2024), Sec. 6 and upstream
`metrics/geodist_metric.py` (facts, not code): for a pair (x = source, y = target) with
template correspondences corr_x, corr_y and a point map p2p (y -> x), the per-vertex
error is `dist_x[corr_x, p2p[corr_y]]` with dist_x the Dijkstra edge-graph geodesic
matrix of x divided by √area(x); the pair's mean error is reported ×100 (the papers'
unit), averaged over pairs; the PCK curve (thresholds 0..`max_threshold`, upstream 0.2
in 40 steps) pools every template vertex of every pair, its AUC is the normalised area
under it.  Each basis in `bases` ('lbo': ZoomOut to k_lbo + k_elastic LBO functions,
'hybrid': hybrid ZoomOut to (k_lbo, k_elastic)) gets `<basis>/mean_error`,
`<basis>/auc`, `<basis>/pck@<t>`; `pairs` counts the pairs.  No parameters: run(None).
Initial map (`init`): 'own' (from WKS in each basis, the default), 'lbo' (the LBO-only
one for both) or 'perturbed_truth' (the true map with `init_noise` of the target
vertices sent to random source vertices: isolates ZoomOut vs hybrid ZoomOut).
"""

from __future__ import annotations

import os

import numpy as np

from jaxvision import config as config_lib
from jaxvision.geometry import geodesics
from jaxvision.geometry import mesh_operators
from jaxvision.metrics import geodesic
from jaxvision.projects.hybrid_fmaps import animals
from jaxvision.projects.hybrid_fmaps import axiomatic
from jaxvision.projects.hybrid_fmaps import benchmark
from jaxvision.projects.hybrid_fmaps import data

DEFAULTS = {
    'type': config_lib.REQUIRED, 'every': 0, 'bases': ('lbo', 'hybrid'),
    'k_lbo': 140, 'k_elastic': 60, 'k_init_lbo': 20, 'k_init_elastic': 10,
    'n_descr': 100, 'n_eig_descr': 50, 'lbo_lambda': 100.0, 'elastic_lambda': 50.0,
    'bending_weight': 1e-2, 'init': 'own', 'init_noise': 0.3,
    'max_threshold': 0.2, 'num_thresholds': 41,
    'report_at': (0.05, 0.1), 'scale': 100.0,
}

INITS = ('own', 'lbo', 'perturbed_truth')


def dataset_root(input_cfg) -> str:
  """The ULRSSM-layout folder: `input.data_dir`, or the embedded benchmark (built once)."""
  if input_cfg.data_dir:
    if not os.path.isdir(input_cfg.data_dir):
      raise FileNotFoundError(f'config.input.data_dir={input_cfg.data_dir!r} is not a folder')
    return input_cfg.data_dir
  builders = {'humans': benchmark.ensure_benchmark, 'dogs': animals.ensure_benchmark}
  which = input_cfg.get('benchmark', 'humans')
  if which not in builders:
    raise config_lib.ConfigError(f'config.input.benchmark={which!r}; expected one of '
                                 f'{sorted(builders)}')
  return builders[which](input_cfg.cache_dir or None, int(input_cfg.num_vertices),
                         tuple(input_cfg.shapes) or None)


def perturbed_truth(x: data.Shape, y: data.Shape, noise: float, seed: int) -> np.ndarray:
  """The true map y -> x (via the template), with a `noise` fraction of y vertices sent
  to uniformly random x vertices (an initial map for refinement-only comparisons)."""
  p2p = np.zeros(len(y.verts), np.int64)
  p2p[y.corr] = x.corr                       # y vertices no template vertex hits stay 0
  rng = np.random.default_rng(seed)
  bad = rng.random(len(p2p)) < noise
  p2p[bad] = rng.integers(0, len(x.verts), int(bad.sum()))
  return p2p


class AxiomaticEvaluator:
  """`run(None)` -> {'<basis>/mean_error', '<basis>/auc', '<basis>/pck@t', 'pairs'}."""

  DEFAULTS = DEFAULTS

  def __init__(self, name: str, cfg, ctx, predict_fns=None):
    del predict_fns   # axiomatic: nothing learnt, nothing predicted
    cfg = config_lib.check_keys(cfg, DEFAULTS, f'config.evals.{name}')
    self.name, self.cfg, self.input_cfg = name, cfg, ctx.config.input
    self.every = int(cfg.every)
    if cfg.init not in INITS:
      raise config_lib.ConfigError(f'config.evals.{name}.init={cfg.init!r}; expected one of '
                                   f'{INITS}')
    for b in cfg.bases:
      self.settings(b).check()
    self.thresholds = np.linspace(0.0, float(cfg.max_threshold), int(cfg.num_thresholds))

  def settings(self, basis: str) -> axiomatic.Settings:
    c = self.cfg
    return axiomatic.Settings(
        basis=basis, k_lbo=int(c.k_lbo), k_elastic=int(c.k_elastic),
        k_init_lbo=int(c.k_init_lbo), k_init_elastic=int(c.k_init_elastic),
        n_descr=int(c.n_descr), n_eig_descr=int(c.n_eig_descr),
        lbo_lambda=float(c.lbo_lambda), elastic_lambda=float(c.elastic_lambda),
        bending_weight=float(c.bending_weight),
        init='given' if c.init == 'perturbed_truth' else str(c.init))

  def pairs(self, shapes):
    p = data.pairs(sorted(shapes), ordered=bool(self.input_cfg.ordered))
    return p[:int(self.input_cfg.max_pairs)] if self.input_cfg.max_pairs else p

  def run(self, params) -> dict[str, float]:
    del params
    root = dataset_root(self.input_cfg)
    shapes = data.load_shapes(root, self.input_cfg.shapes or None)
    pairs = self.pairs(shapes)
    if not pairs:
      raise ValueError(f'config.evals.{self.name}: {root} gives no shape pairs')
    dists = {}
    for x, _ in pairs:
      if x not in dists:
        s = shapes[x]
        area = mesh_operators.total_area(s.verts, s.faces)
        dists[x] = geodesics.geodesic_distmat(s.verts, s.faces) / np.sqrt(area)
    out = {'pairs': float(len(pairs))}
    for basis in self.cfg.bases:
      st = self.settings(basis)
      prepared = {n: axiomatic.prepare(shapes[n].verts, shapes[n].faces, st)
                  for n in sorted({n for p in pairs for n in p})}
      means, curves = [], []
      for i, (x, y) in enumerate(pairs):
        init = (perturbed_truth(shapes[x], shapes[y], float(self.cfg.init_noise), seed=i)
                if self.cfg.init == 'perturbed_truth' else None)
        p2p = axiomatic.match_prepared(prepared[x], prepared[y], st, init)
        r = geodesic.geodesic_error(dists[x], p2p[shapes[y].corr], shapes[x].corr,
                                    self.thresholds)
        means.append(r['mean_error'])
        curves.append(r['pck'])
      curve = np.mean(curves, axis=0)
      out[f'{basis}/mean_error'] = float(self.cfg.scale) * float(np.mean(means))
      out[f'{basis}/auc'] = geodesic.pck_auc(self.thresholds, curve)
      for t in np.asarray(self.cfg.report_at, np.float64).reshape(-1):
        out[f'{basis}/pck@{t:g}'] = float(np.interp(t, self.thresholds, curve))
    return out


EVALUATORS = {'axiomatic': AxiomaticEvaluator}
