"""The quiet console: a default run prints a summary, progress, evals and saves only."""

from __future__ import annotations

import io
import logging
import os
import re

from jaxvision import console
from tests import helpers


def test_default_run_prints_a_few_useful_lines(tmp_path):
  res = helpers.run_binary('experiments/classification/digits_vit.py:tiny', str(tmp_path / 'w'),
                           '--config.total_steps=20', '--config.log_every=10',
                           '--config.checkpoint.every=10')
  assert res.returncode == 0, res.stderr[-3000:]
  # TensorFlow's C++ runtime prints its oneDNN notice (and absl-C++'s pre-init
  # warning) as it loads, before any Python logging exists; not ours to filter.
  lines = [l for l in res.stderr.strip().splitlines()
           if not (l.startswith('WARNING: All log messages before absl::InitializeLog')
                   or re.match(r'I0000 .* port\.cc:\d+\] oneDNN', l))]
  # Summary (5) + mesh, init, parameter count, start (4) + 2 progress + 2 saves + 1 eval.
  assert len(lines) <= 16, '\n'.join(lines)
  assert not [l for l in lines if 'orbax' in l or 'checkpoint_manager' in l
              or 'logging_writer' in l], '\n'.join(lines)
  progress = [l for l in lines if re.search(r'step (10|20)/20: loss .* ETA \d+:\d\d:\d\d', l)]
  assert len(progress) == 2, '\n'.join(lines)
  assert sum('saving the checkpoint of step' in l for l in lines) == 2
  assert any(re.search(r'eval test at step 20 .*accuracy=', l) for l in lines)
  assert any('project classification, 20 steps' in l for l in lines)


def _record(level, pathname):
  return logging.LogRecord('absl', level, pathname, 1, 'msg', (), None)


def test_filter_keeps_jaxvision_and_warnings_drops_library_info():
  quiet = console.QuietLibraries(verbose=False)
  own = os.path.join(os.path.dirname(console.__file__), 'train.py')
  lib = '/site-packages/orbax/checkpoint/checkpoint_manager.py'
  assert quiet.filter(_record(logging.INFO, own))
  assert not quiet.filter(_record(logging.INFO, lib))
  assert quiet.filter(_record(logging.WARNING, lib))
  assert console.QuietLibraries(verbose=True).filter(_record(logging.INFO, lib))


class _Tty(io.StringIO):
  def isatty(self):
    return True


def test_progress_bar_only_on_a_terminal():
  tty, pipe = _Tty(), io.StringIO()
  for stream in (tty, pipe):
    bar = console.ProgressBar(10, stream=stream)
    bar.update(10, loss=0.5)
    bar.close()
  assert '[' + '#' * 30 + '] 10/10' in tty.getvalue() and 'loss 0.5' in tty.getvalue()
  assert pipe.getvalue() == ''
