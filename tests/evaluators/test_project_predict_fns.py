"""Projects' prediction functions keep the numbers of the paths they replaced."""

import jax
import numpy as np

from jaxvision.projects.frofa import evaluators as frofa_evaluators


def test_frofa_pooled_features_equal_numpy_bit_for_bit():
  rng = np.random.default_rng(0)
  grids = (rng.normal(size=(7, 4, 4, 16)) * 10).astype(np.float32)
  pooled = jax.jit(frofa_evaluators.predict_fns(None, None)['features'])({}, {'features': grids})
  np.testing.assert_array_equal(np.asarray(pooled['features']),
                                grids.reshape(7, -1, 16).mean(1))
