"""The shared inference helper on 2 (and 3) local processes (jax.distributed, gloo).

Each process reads its own strided shard of a 37-example source (padded to whole
batches), the batch is assembled across processes, and the outputs come back to every
process: `predict` must return every example exactly once, in dataset order, the same
on every process; `accumulate` must count 37 valid examples; and no process may read an
example another process read.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import numpy as np
import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

WORKER = r'''
import json, os, sys
import jax
jax.distributed.initialize(os.environ['ADDR'], int(os.environ['NP']), int(os.environ['PID']))
import numpy as np
from jaxvision import sharding as sharding_lib
from jaxvision.data.sources import ArraySource
from jaxvision.evaluators import inference

class Recording(ArraySource):   # remembers which examples this process read
  read = []
  def __getitem__(self, i):
    Recording.read.append(int(i))
    return super().__getitem__(i)

n = 37
src = Recording({'x': np.arange(n, dtype=np.float32)[:, None] * np.ones((1, 3), np.float32)})
mesh = sharding_lib.make_mesh({'data': -1})
ctx = inference.EvalContext(model=None, mesh=mesh, rules=(), param_shardings={'w': sharding_lib.replicated(mesh)},
                            config={}, process_index=jax.process_index(),
                            process_count=jax.process_count())
fn = lambda params, batch: {'y': batch['x'].sum(-1) * params['w']}
params = {'w': np.float32(2.0)}
pred = inference.Inference(ctx, fn).predict(params, inference.dataset_batches(ctx, src, batch_size=12))
reads = sorted(set(Recording.read))
sums = inference.sum_over_dataset(ctx, inference.dataset_batches(ctx, src, batch_size=12), fn, params)
print('RESULT ' + json.dumps({'y': pred['y'].tolist(), 'reads': reads, 'sums': sums}))
'''


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(('localhost', 0))
    return s.getsockname()[1]


@pytest.mark.parametrize('processes', [2, 3])
def test_every_example_once_across_processes(processes):
  port = _free_port()
  env = dict(os.environ, PYTHONPATH=REPO, JAX_PLATFORMS='cpu', JAX_NUM_CPU_DEVICES='2',
             ADDR=f'localhost:{port}', NP=str(processes), TF_CPP_MIN_LOG_LEVEL='3')
  env['XLA_FLAGS'] = ' '.join(f for f in env.get('XLA_FLAGS', '').split()
                              if not f.startswith('--xla_force_host_platform_device_count'))
  procs = [subprocess.Popen([sys.executable, '-c', WORKER], cwd=REPO, text=True,
                            env=dict(env, PID=str(i)), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT) for i in range(processes)]
  outs = []
  try:
    for p in procs:
      out, _ = p.communicate(timeout=240)
      assert p.returncode == 0, out[-3000:]
      outs.append(json.loads(out.split('RESULT ', 1)[1].splitlines()[0]))
  finally:
    for p in procs:
      if p.poll() is None:
        p.kill()
  n = 37
  expected = (np.arange(n) * 3 * 2).tolist()
  for o in outs:   # the whole result, in dataset order, on every process
    assert o['y'] == expected
    assert o['sums']['count'] == n
    assert o['sums']['y'] == pytest.approx(sum(expected))
  reads = [set(o['reads']) for o in outs]
  for i in range(processes):   # each process read its own shard, nothing else
    assert reads[i] == set(range(i, n, processes))
  assert set().union(*reads) == set(range(n))
