"""jaxvision.workdir: the workdir lock and the config check of a resumed run.

(Two real processes racing for one workdir: tests/test_reliability.py.)
"""

import json
import os
import subprocess
import sys

import ml_collections
import pytest

from jaxvision import workdir as wd


def _config(**kw):
  c = {'seed': 0, 'total_steps': 10, 'model': {'width': 32, 'depth': 2},
       'checkpoint': {'every': 5}, 'mesh': {'data': -1}}
  c.update(kw)
  return ml_collections.ConfigDict(c)


def test_claim_writes_config_and_lock_release_removes_it(tmp_path):
  wd.claim(str(tmp_path), _config())
  lock = json.loads((tmp_path / wd.LOCK_FILE).read_text())
  assert lock['pid'] == os.getpid()
  assert json.loads((tmp_path / wd.CONFIG_FILE).read_text())['model'] == {'width': 32,
                                                                          'depth': 2}
  with pytest.raises(wd.WorkdirError, match='already in use by a run in this process'):
    wd.claim(str(tmp_path), _config())
  wd.release(str(tmp_path))
  assert not (tmp_path / wd.LOCK_FILE).exists()
  wd.release(str(tmp_path))   # releasing twice is harmless
  wd.claim(str(tmp_path), _config(), process_index=1)   # other processes do nothing
  assert not (tmp_path / wd.LOCK_FILE).exists()


def test_stale_lock_of_a_dead_process_is_taken_over(tmp_path):
  dead = subprocess.run([sys.executable, '-c', 'import os; print(os.getpid())'],
                        capture_output=True, text=True, check=True)
  import socket  # pylint: disable=g-import-not-at-top
  (tmp_path / wd.LOCK_FILE).write_text(json.dumps(
      {'pid': int(dead.stdout), 'host': socket.gethostname(), 'since': 0}))
  wd.claim(str(tmp_path), _config())
  assert json.loads((tmp_path / wd.LOCK_FILE).read_text())['pid'] == os.getpid()
  wd.release(str(tmp_path))


def test_a_lock_held_on_another_host_is_refused(tmp_path):
  (tmp_path / wd.LOCK_FILE).write_text(json.dumps({'pid': 1, 'host': 'elsewhere',
                                                   'since': 0}))
  with pytest.raises(wd.WorkdirError, match='in use by pid 1 on host elsewhere'):
    wd.claim(str(tmp_path), _config())
  assert json.loads((tmp_path / wd.LOCK_FILE).read_text())['host'] == 'elsewhere'


def test_config_diff_lists_every_changed_leaf():
  stored = {'a': 1, 'b': {'c': (1, 2), 'd': 'x'}, 'gone': 3}
  current = {'a': 1, 'b': {'c': [1, 2], 'd': 'y'}, 'new': {'e': 4}}
  assert wd.config_diff(stored, current) == [
      ('b.d', 'x', 'y'), ('gone', 3, '<absent>'), ('new.e', '<absent>', 4)]


def test_neutral_changes_resume_and_computation_changes_are_refused(tmp_path):
  wd.claim(str(tmp_path), _config())
  wd.release(str(tmp_path))
  # Longer run, other checkpoint cadence and mesh: the same computation, allowed.
  wd.claim(str(tmp_path), _config(total_steps=20, checkpoint={'every': 2}, mesh={'data': 2}))
  wd.release(str(tmp_path))
  assert json.loads((tmp_path / wd.CONFIG_FILE).read_text())['total_steps'] == 20
  with pytest.raises(wd.WorkdirError, match=r"another config: model.width was 32, now 64"):
    wd.claim(str(tmp_path), _config(total_steps=20, model={'width': 64, 'depth': 2}))
  assert not (tmp_path / wd.LOCK_FILE).exists()   # a refused claim releases its lock
  wd.claim(str(tmp_path), _config(model={'width': 64, 'depth': 2},
                                  allow_config_change=True))
  wd.release(str(tmp_path))


def test_corrupt_stored_config_is_named(tmp_path):
  (tmp_path / wd.CONFIG_FILE).write_text('{not json')
  with pytest.raises(wd.WorkdirError, match='config.json is not valid JSON'):
    wd.claim(str(tmp_path), _config())
