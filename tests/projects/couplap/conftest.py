"""Shared fixtures of the Coupled Laplacian tests: the real rodent skin of dm-control."""

import pytest

from jaxvision.data import meshes

RODENT = 'locomotion/walkers/assets/rodent_walker_skin.skn'


@pytest.fixture(scope='session')
def rodent_points():
  return meshes.read_point_cloud(meshes.packaged_file('dm_control', RODENT))

