"""The knowledge-base service's nameko extensions: the search backend named in config."""
import logging

from nameko.extensions import DependencyProvider

from .backends import make_backend

log = logging.getLogger(__name__)


class SearchIndex(DependencyProvider):
    """The search backend named in config (``KB_SEARCH_BACKEND``), one per service process."""

    def setup(self):
        self.backend = make_backend(self.container.config)

    def start(self):
        try:
            self.backend.ensure_ready()
        except Exception:  # Elasticsearch not up yet: searches fail until it is, writes retry
            log.exception("search backend %s is not ready", self.backend.name)

    def stop(self):
        self.backend.close()

    def kill(self):
        self.backend.close()

    def get_dependency(self, worker_ctx):
        return self.backend
