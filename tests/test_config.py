"""Config schema checks name the offending key."""

import ml_collections
import pytest

from jaxvision import config as config_lib


SCHEMA = ml_collections.ConfigDict({
    'project': config_lib.REQUIRED,
    'seed': 0,
    'optimizer': {'name': 'adamw', 'b1': 0.9},
    'evals': config_lib.FREE_FORM,
})


def test_defaults_fill_in_and_overrides_win():
  c = config_lib.merge_with_defaults({'project': 'p', 'optimizer': {'b1': 0.5}}, SCHEMA)
  assert c.seed == 0 and c.optimizer.name == 'adamw' and c.optimizer.b1 == 0.5
  assert c.evals.to_dict() == {}


def test_unknown_nested_key_is_named_with_suggestion():
  with pytest.raises(config_lib.ConfigError,
                     match=r"unknown config key 'config\.optimizer\.nmae'; did you mean 'name'"):
    config_lib.merge_with_defaults({'project': 'p', 'optimizer': {'nmae': 'sgd'}}, SCHEMA)


def test_missing_required_key_is_named():
  with pytest.raises(config_lib.ConfigError, match=r"missing required config key 'config\.project'"):
    config_lib.merge_with_defaults({'seed': 1}, SCHEMA)


def test_free_form_section_keeps_user_entries():
  c = config_lib.merge_with_defaults({'project': 'p', 'evals': {'val': {'type': 'x'}}}, SCHEMA)
  assert c.evals.val.type == 'x'


def test_section_given_a_scalar_is_an_error():
  with pytest.raises(config_lib.ConfigError, match=r"'config\.optimizer' must be a dict"):
    config_lib.merge_with_defaults({'project': 'p', 'optimizer': 3}, SCHEMA)


def test_parse_arg():
  a = config_lib.parse_arg('tiny,steps=7,variant=B/16', tiny=False, steps=100, variant='S/16')
  assert a.tiny is True and a.steps == 7 and a.variant == 'B/16'
  with pytest.raises(config_lib.ConfigError, match="unknown config argument 'stpes'"):
    config_lib.parse_arg('stpes=3', steps=1)
