"""The binary's console: a short config summary, progress with ETA, evals, saves.

Libraries log a lot at INFO through absl and Python logging (orbax: dozens of lines per
checkpoint; jax: backend probing).  `setup` keeps their
records below WARNING out of the console unless absl's `--verbosity` is raised
(`--verbosity=1` shows everything, jaxvision's DEBUG lines included); jaxvision's own
INFO lines always pass.  TensorFlow is imported only by tfds datasets (the metric
writers do not use it); its C++ INFO lines are off through `TF_CPP_MIN_LOG_LEVEL` (set
by `jaxvision.train` before anything loads it).  On a
terminal, `ProgressBar` redraws one status line in place; in a log file it is silent
and the periodic progress lines carry the same numbers.
"""

from __future__ import annotations

import logging as py_logging
import os
import sys
import time
from typing import Any, TextIO

from absl import logging

_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep


class QuietLibraries(py_logging.Filter):
  """Passes WARNING and above, and jaxvision's own records; the rest only if verbose."""

  def __init__(self, verbose: bool = False):
    super().__init__()
    self.verbose = verbose

  def filter(self, record: py_logging.LogRecord) -> bool:
    if not self.verbose and '/orbax/' in record.pathname and record.exc_info:
      # A failed save: orbax logs its traceback from several threads; the run's own
      # error line names the path and the cause.
      record.exc_info, record.exc_text = None, None
    if self.verbose or record.levelno >= py_logging.WARNING:
      return True
    return os.path.abspath(record.pathname).startswith(_PACKAGE_DIR)


def setup(verbose: bool | None = None) -> QuietLibraries:
  """Installs the filter on absl's logger and on every root handler; returns it.

  `verbose` defaults to absl's `--verbosity` >= 1.
  """
  if verbose is None:
    verbose = logging.get_verbosity() >= 1
  quiet = QuietLibraries(verbose)
  targets = [py_logging.getLogger('absl'), *py_logging.getLogger().handlers]
  for target in targets:
    for f in [f for f in target.filters if isinstance(f, QuietLibraries)]:
      target.removeFilter(f)
    target.addFilter(quiet)
  return quiet


def config_summary(config: Any, workdir: str) -> str:
  """A few lines: what runs, where, for how long, on what (the full config: config.json)."""
  lines = [f'project {config.project}, {int(config.total_steps)} steps, seed {config.seed}, '
           f'workdir {workdir} (full config: config.json)']
  if 'model' in config and config.model:
    lines.append('model: ' + _short(config.model))
  if 'input' in config:
    keys = [k for k in ('dataset', 'batch_size', 'image_size') if k in config.input]
    if keys:
      lines.append('input: ' + ', '.join(f'{k}={config.input[k]}' for k in keys))
  if 'optimizer' in config:
    lines.append(f'optimizer {config.optimizer.name}, schedule {config.schedule.type} '
                 f'base_lr={config.schedule.base_lr}, warmup={config.schedule.warmup_steps}')
  if 'evals' in config and config.evals:
    lines.append('evals: ' + ', '.join(f'{k} ({v.get("type", "?")})'
                                       for k, v in config.evals.items()))
  return '\n'.join(lines)


def _short(section: Any, limit: int = 8) -> str:
  items = [(k, v) for k, v in section.items() if not hasattr(v, 'items')]
  text = ', '.join(f'{k}={v}' for k, v in items[:limit])
  return text + (', ...' if len(items) > limit else '')


class ProgressBar:
  """A one-line progress bar with ETA, drawn only when `stream` is a terminal."""

  def __init__(self, total: int, start: int = 0, stream: TextIO | None = None,
               width: int = 30):
    self.stream = stream or sys.stderr
    self.enabled = bool(getattr(self.stream, 'isatty', lambda: False)()) and total > 0
    self.total, self.start, self.width = total, start, width
    self._t0 = time.time()
    self._last_draw = 0.0

  def update(self, step: int, **values: float) -> None:
    if not self.enabled:
      return
    now = time.time()
    if now - self._last_draw < 0.1 and step < self.total:
      return
    self._last_draw = now
    rate = (step - self.start) / max(now - self._t0, 1e-9)
    eta = (self.total - step) / max(rate, 1e-9)
    filled = int(self.width * step / self.total)
    bar = '#' * filled + '-' * (self.width - filled)
    extra = ' '.join(f'{k} {v:.4g}' for k, v in values.items())
    self.stream.write(f'\r[{bar}] {step}/{self.total} {rate:.2f} it/s ETA '
                      f'{int(eta) // 60}:{int(eta) % 60:02d} {extra}\x1b[K')
    self.stream.flush()

  def close(self) -> None:
    if self.enabled:
      self.stream.write('\n')
      self.stream.flush()
