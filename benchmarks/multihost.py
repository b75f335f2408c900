r"""Training throughput of the binary on 1, 2, 4 local processes; prints one JSON object.

  python benchmarks/multihost.py [--processes=1,2,4] [--devices=4] [--steps=60] \
      [--config=experiments/classification/digits_vit.py] [--out=result.json]

Each run is `python -m jaxvision.train` (`--config.distributed=True` on every process
when there are several), with `--devices` simulated CPU devices in all, split evenly
over the processes (the same global mesh every time), gloo collectives, the evaluators
off and no checkpoints but the last.  examples/s is the binary's own number (global
batch x steps/s) averaged over the log intervals after the first (compilation), so it
includes input, the host-to-device assembly across processes and the collectives.  On
one small CPU box more processes cannot be faster: the number shows their overhead.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(('localhost', 0))
    return s.getsockname()[1]


def run(processes: int, devices: int, steps: int, config: str, log_every: int) -> dict:
  workdir = tempfile.mkdtemp(prefix=f'jaxvision_mh{processes}_')
  port = _free_port()
  procs = []
  for i in range(processes):
    env = dict(os.environ, PYTHONPATH=REPO, TF_CPP_MIN_LOG_LEVEL='3', JAX_PLATFORMS='cpu',
               JAX_NUM_CPU_DEVICES=str(devices // processes))
    flags = [f'--config={config}', f'--workdir={workdir}', f'--config.total_steps={steps}',
             f'--config.log_every={log_every}', f'--config.checkpoint.every={steps}',
             f'--config.schedule.warmup_steps={steps // 4}']
    if processes > 1:
      env.update(JAX_COORDINATOR_ADDRESS=f'localhost:{port}', JAX_NUM_PROCESSES=str(processes),
                 JAX_PROCESS_ID=str(i))
      flags.append('--config.distributed=True')
    procs.append(subprocess.Popen([sys.executable, '-m', 'jaxvision.train', *flags], cwd=REPO,
                                  env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                  text=True))
  t0 = time.time()
  for p in procs:
    _, err = p.communicate()
    if p.returncode:
      raise SystemExit(f'{processes} processes: a process exited with {p.returncode}:\n'
                       f'{err[-2000:]}')
  wall = time.time() - t0
  with open(os.path.join(workdir, 'metrics.jsonl')) as f:
    recs = [json.loads(line) for line in f]
  rates = [r['examples_per_sec'] for r in recs if 'examples_per_sec' in r][1:]
  return {'processes': processes, 'devices_per_process': devices // processes,
          'examples_per_sec': sum(rates) / len(rates) if rates else None,
          'wall_s_including_start_and_compile': round(wall, 1)}


def main():
  ap = argparse.ArgumentParser()
  ap.add_argument('--processes', default='1,2,4')
  ap.add_argument('--devices', type=int, default=4)
  ap.add_argument('--steps', type=int, default=60)
  ap.add_argument('--log_every', type=int, default=10)
  ap.add_argument('--config', default='experiments/classification/digits_vit.py')
  ap.add_argument('--out', default=None)
  args = ap.parse_args()
  results = [run(int(n), args.devices, args.steps, args.config, args.log_every)
             for n in args.processes.split(',')]
  out = {'benchmark': 'multihost', 'config': args.config, 'steps': args.steps,
         'global_devices': args.devices, 'cpu_count': os.cpu_count(),
         'load_1min': os.getloadavg()[0], 'runs': results}
  text = json.dumps(out, indent=1)
  print(text)
  if args.out:
    with open(args.out, 'w') as f:
      f.write(text + '\n')


if __name__ == '__main__':
  main()
