"""Scoring past one machine: a Ray backend with the pytest process as the controller.

ray_pool.py is the controller's side (actors, chunks in flight, retries, figures); actor.py
the device worker that runs in each Ray actor. Ray is imported only by a run with --rm-ray.
"""

from .ray_pool import INSTALL, RayPool, RayUnavailable, connect, import_ray

__all__ = ["INSTALL", "RayPool", "RayUnavailable", "connect", "import_ray"]
