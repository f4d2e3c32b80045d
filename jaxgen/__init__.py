"""jaxgen: generative models learned by explicit distribution learning, in JAX."""

__version__ = "0.1.0"
