"""FlowMDM's Gaussian diffusion: `jaxvision.diffusion.gaussian` (moved there, shared).

Kept so that `from jaxvision.projects.flowmdm import diffusion` keeps working; new code
imports `jaxvision.diffusion.gaussian`.
"""

from jaxvision.diffusion.gaussian import (  # pylint: disable=unused-import
    Diffusion, cosine_betas, linear_betas, make_diffusion, masked_mse, named_betas, respaced,
    space_timesteps)
