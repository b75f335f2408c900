r"""Hybrid Functional Maps pre-processing: time and peak memory; prints one JSON object.

  python benchmarks/hybrid_fmaps.py [--n_major=100 --n_minor=50] [--k=200] \
      [--k_lbo=200] [--bending_weight=1e-2] [--out=result.json]

One closed mesh (a torus of n_major·n_minor vertices, 5,000 by default, scaled to unit
area as upstream pre-processing does) and, as in upstream `get_elas_operators`, k = 200
elastic eigenfunctions: the rest-state shell Hessian from per-element `jax.hessian`
blocks (first call with compilation, then warm), then the shift-invert `eigsh` of the
3n×3n generalized problem, then the normal projection; and the 200-function LBO basis
for comparison.  Also (`--dn_steps`, 0 to skip) a DiffusionNet step on the same mesh
(`jaxvision.nn.diffusion_net`, upstream sizes: 128 LBO eigenpairs, width 128, 4 blocks,
256 outputs, sparse gradient operators, Adam): forward + backward + update under jit
with a PROXY loss (mean squared feature) — the ULRSSM / hybrid losses are not built yet,
so this times the feature extractor, not the full learned train step.  Runs in a fresh process so that ru_maxrss is its own peak.  CPU wall
times on shared cores are noisy: the JSON records the load average.
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

_N_MAJOR = flags.DEFINE_integer('n_major', 100, 'torus vertices around the main circle')
_N_MINOR = flags.DEFINE_integer('n_minor', 50, 'torus vertices around the tube')
_K = flags.DEFINE_integer('k', 200, 'elastic eigenfunctions')
_K_LBO = flags.DEFINE_integer('k_lbo', 200, 'LBO eigenfunctions (0: skip)')
_BENDING = flags.DEFINE_float('bending_weight', 1e-2, 'bending weight')
_DN_STEPS = flags.DEFINE_integer('dn_steps', 5, 'timed DiffusionNet steps (0: skip)')
_OUT = flags.DEFINE_string('out', None, 'also write the JSON here')


def _measure(n_major, n_minor, k, k_lbo, bending_weight, queue):
  from jaxvision.geometry import elastic  # pylint: disable=g-import-not-at-top
  from jaxvision.geometry import mesh_operators as mo  # pylint: disable=g-import-not-at-top
  from jaxvision.geometry import primitives  # pylint: disable=g-import-not-at-top
  from jaxvision.geometry import shell_energy  # pylint: disable=g-import-not-at-top
  from jaxvision.geometry import spectral  # pylint: disable=g-import-not-at-top
  v, f = primitives.torus(n_major, n_minor)
  v, _ = mo.normalize_area(v, f)
  out = {'vertices': int(len(v)), 'faces': int(len(f)), 'k': k, 'bending_weight': bending_weight}
  t0 = time.perf_counter()
  hess = shell_energy.shell_hessian(v, f, bending_weight)
  out['hessian_first_call_s'] = time.perf_counter() - t0      # includes XLA compilation
  t0 = time.perf_counter()
  hess = shell_energy.shell_hessian(v, f, bending_weight)
  out['hessian_warm_s'] = time.perf_counter() - t0
  out['hessian_nnz'] = int(hess.nnz)
  t0 = time.perf_counter()
  basis = elastic.elastic_basis(v, f, k, bending_weight, dense_max_dofs=0)
  out['elastic_basis_total_s'] = time.perf_counter() - t0     # warm: Hessian + eigsh + projection
  out['eigsh_and_projection_s'] = out['elastic_basis_total_s'] - out['hessian_warm_s']
  out['elastic_evals_first_last'] = [float(basis.evals[0]), float(basis.evals[-1])]
  if k_lbo:
    t0 = time.perf_counter()
    lbo = spectral.lbo_basis(v, f, k_lbo, solver='eigsh')
    out['lbo_basis_s'] = time.perf_counter() - t0
    out['lbo_evals_last'] = float(lbo.evals[-1])
  out['peak_rss_bytes'] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
  queue.put(out)


def _measure_dn(n_major, n_minor, steps, queue):
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  import optax  # pylint: disable=g-import-not-at-top
  from jaxvision.geometry import mesh_operators as mo  # pylint: disable=g-import-not-at-top
  from jaxvision.geometry import primitives  # pylint: disable=g-import-not-at-top
  from jaxvision.nn import diffusion_net as dn  # pylint: disable=g-import-not-at-top
  v, f = primitives.torus(n_major, n_minor)
  v, _ = mo.normalize_area(v, f)
  t0 = time.perf_counter()
  ops = dn.mesh_ops(v, f, k=128, sparse=True)
  out = {'vertices': int(len(v)), 'operators_s': time.perf_counter() - t0,
         'loss': 'proxy: mean squared feature (not the ULRSSM losses)'}
  x = jnp.asarray(v, jnp.float32)
  model = dn.DiffusionNet(out_channels=256, width=128, num_blocks=4)
  params = model.init(jax.random.key(0), x, ops)
  opt = optax.adam(1e-3)
  state = opt.init(params)

  @jax.jit
  def step(params, state, key):
    def loss(p):
      feat = model.apply(p, x, ops, train=True, rngs={'dropout': key})
      return jnp.mean(feat ** 2)
    val, grads = jax.value_and_grad(loss)(params)
    upd, state = opt.update(grads, state, params)
    return optax.apply_updates(params, upd), state, val

  t0 = time.perf_counter()
  params, state, val = step(params, state, jax.random.key(1))
  jax.block_until_ready(val)
  out['first_step_s'] = time.perf_counter() - t0           # includes XLA compilation
  t0 = time.perf_counter()
  for i in range(steps):
    params, state, val = step(params, state, jax.random.key(2 + i))
  jax.block_until_ready(val)
  out['step_s'] = (time.perf_counter() - t0) / steps
  out['params'] = int(sum(p.size for p in jax.tree.leaves(params)))
  out['peak_rss_bytes'] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
  queue.put(out)


def main(argv):
  del argv
  result = {'benchmark': 'hybrid_fmaps', **report.machine(),
            # The time goes to scipy (ARPACK eigsh, sparse solves), outside XLA: no cost
            # analysis, so no FLOPs/MFU; the matmul peak is recorded for reference.
            'flops': None, 'matmul_peak_flops_per_s': mfu.measure_matmul_peak()}
  ctx = mp.get_context('spawn')
  queue = ctx.Queue()
  proc = ctx.Process(target=_measure, args=(_N_MAJOR.value, _N_MINOR.value, _K.value,
                                            _K_LBO.value, _BENDING.value, queue))
  proc.start()
  result['elastic_basis'] = queue.get()
  proc.join()
  if _DN_STEPS.value:
    proc = ctx.Process(target=_measure_dn, args=(_N_MAJOR.value, _N_MINOR.value,
                                                 _DN_STEPS.value, queue))
    proc.start()
    result['diffusion_net_step'] = queue.get()
    proc.join()
  result['load_average_after'] = os.getloadavg()
  report.emit(result, _OUT.value)


if __name__ == '__main__':
  app.run(main)
