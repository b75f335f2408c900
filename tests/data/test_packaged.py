"""jaxvision.data.packaged: files inside installed wheels, and the errors when absent."""

import os

import pytest

from jaxvision.data import packaged


def test_finds_a_file_of_an_installed_package():
  path = packaged.packaged_file('numpy', '__init__.py')
  assert os.path.isfile(path) and path.endswith(os.path.join('numpy', '__init__.py'))


def test_missing_package_names_the_pip_command():
  with pytest.raises(FileNotFoundError, match='pip install --no-deps not-a-pkg-xyz'):
    packaged.packaged_file('not_a_pkg_xyz', 'a.txt')
  with pytest.raises(FileNotFoundError, match='pip install --no-deps other-name'):
    packaged.packaged_file('not_a_pkg_xyz', 'a.txt', pip_name='other-name')


def test_missing_file_names_the_path():
  with pytest.raises(FileNotFoundError, match="'no/such/file.bin' is not in the installed 'numpy'"):
    packaged.packaged_file('numpy', 'no/such/file.bin')
