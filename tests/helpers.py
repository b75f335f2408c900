"""Shared test helpers: small real-data configs and running the binary."""

from __future__ import annotations

import os
import subprocess
import sys

import ml_collections

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def digits_config(**overrides) -> ml_collections.ConfigDict:
  """A small ViT on the real digits; seconds per run on CPU."""
  c = ml_collections.ConfigDict({
      'project': 'classification',
      'seed': 0,
      'total_steps': 5,
      'log_every': 1,
      'input': {'dataset': 'digits', 'batch_size': 16, 'image_size': (8, 8), 'channels': 1,
                'value_range': (0.0, 1.0), 'augment': {'crop_pad': 1}},
      'model': {'variant': 'S/2', 'width': 32, 'depth': 2, 'mlp_dim': 64, 'num_heads': 4,
                'num_classes': 10, 'head_zeroinit': False},
      'optimizer': {'name': 'adamw', 'weight_decay': 1e-4, 'grad_clip_norm': 1.0},
      'schedule': {'type': 'cosine', 'base_lr': 1e-3, 'warmup_steps': 2},
      'evals': {'val': {'type': 'classification', 'split': 'val', 'batch_size': 64}},
      'checkpoint': {'every': 5, 'keep': 3, 'asynchronous': False},
  })
  for key, value in overrides.items():
    node = c
    *parents, leaf = key.split('.')
    for p in parents:
      if p not in node:
        node[p] = ml_collections.ConfigDict()
      node = node[p]
    node[leaf] = value
  return c


def binary_command(config_path: str, workdir: str, *overrides: str) -> list[str]:
  return [sys.executable, '-m', 'jaxvision.train', f'--config={config_path}',
          f'--workdir={workdir}', *overrides]


def run_binary(config_path: str, workdir: str, *overrides: str, timeout: int = 300,
               env_extra: dict[str, str] | None = None) -> subprocess.CompletedProcess:
  env = dict(os.environ, PYTHONPATH=REPO, TF_CPP_MIN_LOG_LEVEL='3', **(env_extra or {}))
  return subprocess.run(binary_command(config_path, workdir, *overrides), cwd=REPO, env=env,
                        capture_output=True, text=True, timeout=timeout)


def run_colab(name: str) -> dict:
  """Runs every code cell of colabs/<name>.ipynb in one namespace (after checking that
  the notebook is committed with its outputs stripped) and returns the namespace."""
  import nbformat  # pylint: disable=g-import-not-at-top
  nb = nbformat.read(os.path.join(REPO, 'colabs', f'{name}.ipynb'), as_version=4)
  code = [c for c in nb.cells if c.cell_type == 'code']
  assert all(not c.get('outputs') for c in code), f'commit {name}.ipynb with outputs stripped'
  namespace: dict = {}
  for cell in code:
    exec(compile(cell.source, f'{name}.ipynb', 'exec'), namespace)  # pylint: disable=exec-used
  return namespace
