"""jaxvision.runs.load_run on a tiny run trained here through the binary's `train.train`:
the loaded model and params reproduce the run's own logged eval accuracy (at each saved
step), and bad workdirs are refused by name."""

from __future__ import annotations

import json
import os

import jax.numpy as jnp
import numpy as np
import pytest

from jaxvision import runs
from jaxvision import train
from jaxvision.data import digits
from jaxvision.projects.classification import data as cls_data
from tests import helpers


@pytest.fixture(scope='module')
def tiny_run(tmp_path_factory):
  workdir = str(tmp_path_factory.mktemp('run'))
  config = helpers.digits_config(**{'total_steps': 4, 'checkpoint.every': 2,
                                    'evals.val.every': 2, 'schedule.base_lr': 3e-3})
  out = train.train(config, workdir)
  return workdir, out


def _val_accuracy(run):
  _, eval_fn = cls_data.preprocess_fns(run.config.input)
  val = digits.load('val')
  images = np.stack([eval_fn({'image': x, 'label': 0})['image'] for x in val['image']])
  logits, _ = run.model.apply({'params': run.params}, jnp.asarray(images), train=False)
  return float(np.mean(np.argmax(np.asarray(logits), -1) == val['label']))


def test_load_run_reproduces_the_logged_accuracy_at_each_step(tiny_run):
  workdir, out = tiny_run
  latest = runs.load_run(workdir)
  assert latest.config.project == 'classification'
  assert latest.config.model.to_dict() == train.validate_config(
      helpers.digits_config()).model.to_dict()
  for step in (2, 4):
    run = runs.load_run(workdir, step) if step == 2 else latest
    assert _val_accuracy(run) == pytest.approx(out['eval'][step]['val/accuracy'], abs=1e-6)
  first = runs.load_run(workdir, 2)
  assert not np.allclose(first.params['head']['kernel'], latest.params['head']['kernel'])


def test_load_run_refuses_what_is_not_a_finished_run(tiny_run, tmp_path):
  workdir, _ = tiny_run
  with pytest.raises(FileNotFoundError, match='no config.json'):
    runs.load_run(str(tmp_path))
  with pytest.raises(FileNotFoundError, match='no checkpoint of step 3'):
    runs.load_run(workdir, 3)
  with pytest.raises(ValueError, match="project 'classification'; expected one of"):
    runs.load_run(workdir, projects_allowed=('flowmdm',))
  empty = tmp_path / 'empty'
  empty.mkdir()
  with open(empty / 'config.json', 'w') as f:
    json.dump(json.load(open(os.path.join(workdir, 'config.json'))), f)
  with pytest.raises(FileNotFoundError, match='but no checkpoint under checkpoints'):
    runs.load_run(str(empty))
  (tmp_path / 'bad').mkdir()
  (tmp_path / 'bad' / 'config.json').write_text('[1, 2]')
  with pytest.raises(ValueError, match="JSON object with a 'project' key"):
    runs.load_run(str(tmp_path / 'bad'))
