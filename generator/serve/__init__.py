"""Stage 5: a live Triton server, embedded (the tritonserver bundled in nvidia-pytriton) or external.

`EmbeddedServer(repository, models)` is a context manager yielding a `ServerHandle`; an external
server (`--url`) is `ServerHandle.external(url)`. Measurements take a `ServerHandle` either way.
"""

from .embedded import EmbeddedServer, repository_models
from .handle import ServerHandle
from .install import TritonInstall, locate_triton

__all__ = ["EmbeddedServer", "ServerHandle", "TritonInstall", "locate_triton", "repository_models"]
