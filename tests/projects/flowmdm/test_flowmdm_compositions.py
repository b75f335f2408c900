"""Upstream's composition JSON formats and evaluation modes (replications, intervals)."""

import json

import ml_collections
import numpy as np
import pytest

from jaxvision.data.errors import DataFileError
from jaxvision.projects.flowmdm import api
from jaxvision.projects.flowmdm import evaluators


def _write(tmp_path, name, data):
  path = tmp_path / name
  path.write_text(json.dumps(data, indent='\t'))
  return str(path)


def test_runners_json_and_evaluation_sets_are_read(tmp_path):
  # runners/jsons/*.json: one composition, "lengths" then "text".
  one = _write(tmp_path, 'composition.json', {'lengths': [64, 42, 30],
                                              'text': ['turn left', 'walk', 't-pose']})
  assert evaluators.read_compositions(one) == [
      {'text': ['turn left', 'walk', 't-pose'], 'lengths': [64, 42, 30]}]
  # Evaluation sets: a list with ids and scenarios; upstream casts lengths with int().
  many = _write(tmp_path, 'val_set.json', [
      {'id': 0, 'lengths': ['40', 50], 'text': ['a', 'b'], 'scenario': 'in-distribution'},
      {'id': 1, 'lengths': [60.0], 'text': ['c'], 'scenario': 'out-of-distribution'},
      {'id': 2, 'lengths': [30, 30], 'text': ['d', 'e']}])
  assert len(evaluators.read_compositions(many)) == 3
  ood = evaluators.read_compositions(many, 'out-of-distribution')
  assert ood == [{'text': ['c'], 'lengths': [60]}, {'text': ['d', 'e'], 'lengths': [30, 30]}]
  with pytest.raises(DataFileError, match="no compositions of scenario 'short'"):
    evaluators.read_compositions(_write(tmp_path, 's.json', [
        {'lengths': [1], 'text': ['x'], 'scenario': 'long'}]), 'short')


@pytest.mark.parametrize('data,words', [
    ({'lengths': [10, 20], 'text': ['a']}, 'equally long'),
    ({'lengths': [10, -1], 'text': ['a', 'b']}, 'positive frame counts'),
    ({'lengths': [10, 2.5], 'text': ['a', 'b']}, 'positive frame counts'),
    ({'lengths': [10], 'text': [3]}, 'string'),
    ([1, 2], 'expected an object'),
    ('walk', 'expected an object'),
], ids=['mismatch', 'negative', 'fraction', 'text', 'list_of_numbers', 'string'])
def test_bad_composition_files_are_named(tmp_path, data, words):
  path = _write(tmp_path, 'bad.json', data)
  with pytest.raises(DataFileError, match=words) as e:
    evaluators.read_compositions(path)
  assert 'bad.json' in str(e.value)
  (tmp_path / 'broken.json').write_text('{"lengths": [')
  with pytest.raises(DataFileError, match='not valid JSON'):
    evaluators.read_compositions(str(tmp_path / 'broken.json'))


def test_final_mode_reports_mean_and_upstream_interval():
  # 10 replications, each with its own seed; mean and 1.96 std / sqrt(10) (population std,
  # numpy's default, as upstream's get_metric_statistics).
  ev = object.__new__(evaluators.CompositionEvaluator)
  ev.cfg = ml_collections.ConfigDict({'mode': 'final', 'seed': 5, 'save': False})
  ev.compositions = [{'text': ['a'], 'lengths': [3]}]
  seeds = []

  def run_once(params, seed):
    seeds.append(seed)
    return {'pj': float(seed) ** 2, 'auj': 1.0}, (None, None)

  ev.run_once = run_once
  out = evaluators.CompositionEvaluator.run(ev, params=None)
  assert seeds == list(range(5, 15))
  pj = np.arange(5, 15, dtype=np.float64) ** 2
  mean = sum(pj) / 10
  ci = 1.96 * np.sqrt(sum((pj - mean) ** 2) / 10) / np.sqrt(10)
  assert out['pj'] == pytest.approx(mean) and out['pj_ci'] == pytest.approx(ci)
  assert out['auj'] == 1.0 and out['auj_ci'] == 0.0
  ev.cfg.mode = 'single'
  seeds.clear()
  assert evaluators.CompositionEvaluator.run(ev, params=None) == {'pj': 25.0, 'auj': 1.0}
  assert seeds == [5]


def test_compose_file_samples_every_composition(tmp_path, monkeypatch):
  path = _write(tmp_path, 'extrapolation.json', {'lengths': [34] * 3,
                                                 'text': ['steps to the right'] * 3})
  calls = []
  monkeypatch.setattr(api, 'compose', lambda run, texts, lengths, seed, **kw: calls.append(
      (texts, lengths, seed, kw)) or np.zeros((sum(lengths), 2)))
  out = api.compose_file(None, path, seed=7, guidance_scale=1.5)
  assert [o.shape for o in out] == [(102, 2)]
  assert calls == [(['steps to the right'] * 3, [34] * 3, 7, {'guidance_scale': 1.5})]
