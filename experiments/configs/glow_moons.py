"""glow on the 2D `moons` density (jaxgen.data.toy2d)
"""
from experiments.configs import _flows


def get_config():
    return _flows.toy_config("glow", "moons")
