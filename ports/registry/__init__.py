"""The project port registry: the .devports.yml format, each project against the live sockets,
its pages and its API."""
