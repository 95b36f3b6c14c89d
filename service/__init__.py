"""weightinit: seeded, reproducible neural-network initial weights over HTTP.

``create_app`` is imported lazily so that ``import service.core`` (the pure NumPy engine)
never pulls Flask in.
"""

from .version import ENGINE_VERSION


def create_app(config=None):
    """The Flask application (``gunicorn 'service:create_app()'``)."""
    from .api.app import create_app as _create_app

    return _create_app(config)


__all__ = ["create_app", "ENGINE_VERSION"]
