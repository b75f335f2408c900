"""Workdir ownership: one run per workdir, and a resumed run is the run that wrote it.

`claim(workdir, config)` (process 0 of a run) does three things before anything is
written:
- takes `<workdir>/LOCK` (pid, host, start time, created with O_EXCL).  A second
  process is refused with the holder's pid and host; a lock whose pid is dead on this
  host is stale and taken over (logged).
- compares the command's config with the stored `config.json`.  Every difference is
  logged; differences in keys that change what the run computes (model, data,
  optimizer, seed, ...) are refused unless `config.allow_config_change=True`.  Keys
  that only change how long or how observably the run goes (`total_steps`,
  `log_every`, `checkpoint.*`, `mesh.*`, `evals.*`, `profile.*`, ...) are allowed.
- writes the new `config.json`.
`release(workdir)` removes the lock (train() calls it on every exit; a killed process
leaves a stale lock that the next run takes over).
"""

from __future__ import annotations

import json
import os
import socket
import time
from typing import Any

from absl import logging
import ml_collections

LOCK_FILE = 'LOCK'
CONFIG_FILE = 'config.json'
# Top-level keys (or dotted prefixes) whose change does not change the computation of
# the steps already taken: resuming with them changed is normal.
RUN_NEUTRAL = ('total_steps', 'log_every', 'checkpoint', 'mesh', 'sharding_rules', 'evals',
               'profile', 'distributed', 'allow_config_change')

_HELD: dict[str, str] = {}   # workdir -> lock path, locks this process holds


class WorkdirError(RuntimeError):
  """The workdir belongs to another run (locked, or written by another config)."""


def _alive(pid: int) -> bool:
  try:
    os.kill(pid, 0)
  except ProcessLookupError:
    return False
  except PermissionError:
    return True
  try:   # a killed process its parent has not reaped yet is a zombie: dead
    with open(f'/proc/{pid}/stat', encoding='utf-8') as f:
      return f.read().rsplit(')', 1)[-1].split()[0] != 'Z'
  except (OSError, IndexError):
    return True


def _read_lock(path: str) -> dict[str, Any]:
  try:
    with open(path, encoding='utf-8') as f:
      return json.load(f)
  except (OSError, ValueError):
    return {}


def acquire(workdir: str) -> str:
  """Takes the workdir's lock or raises `WorkdirError` naming the holder."""
  workdir = os.path.abspath(workdir)
  path = os.path.join(workdir, LOCK_FILE)
  if workdir in _HELD:
    raise WorkdirError(f'{workdir} is already in use by a run in this process (pid '
                       f'{os.getpid()})')
  me = {'pid': os.getpid(), 'host': socket.gethostname(), 'since': time.time()}
  for _ in range(3):
    try:
      fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
      holder = _read_lock(path)
      pid, host = holder.get('pid'), holder.get('host')
      stale = host == me['host'] and isinstance(pid, int) and (
          pid == me['pid'] or not _alive(pid))
      if not stale:
        since = time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(holder.get('since', 0)))
        raise WorkdirError(
            f'{workdir} is in use by pid {pid} on host {host} (since {since}); wait for it '
            f'to finish or use another --workdir. If that process is gone, delete {path}')
      logging.warning('taking over the stale lock %s of pid %s on %s (no such process)',
                      path, pid, host)
      try:
        os.remove(path)
      except FileNotFoundError:
        pass
      continue
    with os.fdopen(fd, 'w', encoding='utf-8') as f:
      json.dump(me, f)
    _HELD[workdir] = path
    return path
  raise WorkdirError(f'could not take the lock {path}: another process keeps taking it')


def release(workdir: str) -> None:
  path = _HELD.pop(os.path.abspath(workdir), None)
  if path is not None:
    try:
      os.remove(path)
    except FileNotFoundError:
      pass


def _flatten(d: Any, prefix: str = '') -> dict[str, Any]:
  out = {}
  for k, v in d.items():
    key = f'{prefix}{k}'
    if isinstance(v, dict) and v:
      out.update(_flatten(v, key + '.'))
    else:
      out[key] = v
  return out


def _normalise(x: Any) -> Any:
  """JSON round trip: tuples become lists, as in the stored file."""
  return json.loads(json.dumps(x, default=str))


def config_diff(stored: dict[str, Any], current: dict[str, Any]) -> list[tuple[str, Any, Any]]:
  """[(dotted key, stored value, current value)] of every differing leaf, sorted."""
  a, b = _flatten(_normalise(stored)), _flatten(_normalise(current))
  missing = object()
  return [(k, a.get(k, '<absent>'), b.get(k, '<absent>'))
          for k in sorted(set(a) | set(b)) if a.get(k, missing) != b.get(k, missing)]


def _neutral(key: str) -> bool:
  return any(key == n or key.startswith(n + '.') for n in RUN_NEUTRAL)


def check_config(workdir: str, config: ml_collections.ConfigDict) -> None:
  """Logs the diff to the stored config.json; refuses run-changing differences."""
  path = os.path.join(workdir, CONFIG_FILE)
  if not os.path.exists(path):
    return
  try:
    with open(path, encoding='utf-8') as f:
      stored = json.load(f)
  except ValueError as e:
    raise WorkdirError(f'{path} is not valid JSON ({e}); delete it or use another '
                       f'--workdir') from e
  current = json.loads(config.to_json_best_effort())
  diff = config_diff(stored, current)
  if not diff:
    return
  lines = [f'  {k}: {old!r} -> {new!r}' for k, old, new in diff]
  logging.warning('config differs from the stored %s:\n%s', path, '\n'.join(lines))
  changing = [(k, old, new) for k, old, new in diff if not _neutral(k)]
  if changing and not config.get('allow_config_change', False):
    k, old, new = changing[0]
    more = f' (and {len(changing) - 1} more)' if len(changing) > 1 else ''
    raise WorkdirError(
        f'{workdir} holds a run with another config: {k} was {old!r}, now {new!r}{more}. '
        f'Use another --workdir, or pass --config.allow_config_change=True to continue this '
        f'run with the new config')


def claim(workdir: str, config: ml_collections.ConfigDict, process_index: int = 0) -> None:
  """Lock + config check + write config.json (process 0; others do nothing)."""
  if process_index != 0:
    return
  os.makedirs(workdir, exist_ok=True)
  acquire(workdir)
  try:
    check_config(workdir, config)
    tmp = os.path.join(workdir, CONFIG_FILE + '.tmp')
    with open(tmp, 'w', encoding='utf-8') as f:
      f.write(config.to_json_best_effort(indent=2))
    os.replace(tmp, os.path.join(workdir, CONFIG_FILE))
  except BaseException:
    release(workdir)
    raise
