"""Free TCP ports on 127.0.0.1 for the embedded server (never assume 8000-8002 are free)."""

from __future__ import annotations

import socket
from contextlib import ExitStack

from ..errors import GeneratorError

HOST = "127.0.0.1"


def port_is_free(port: int, host: str = HOST) -> bool:
    """True when a listening socket could bind `port` right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def pick_ports(requested: tuple[int, ...], host: str = HOST) -> tuple[int, ...]:
    """Each 0 becomes a distinct free port; fixed ports are checked and kept.

    The OS picks the free ports (bind to port 0), all held open together so they differ. Another
    process may still take one before the server binds it: the caller retries on a collision.
    """
    if len(set(p for p in requested if p)) != len([p for p in requested if p]):
        raise GeneratorError(f"the HTTP, gRPC and metrics ports must differ, got {list(requested)}")
    with ExitStack() as stack:
        held: dict[int, int] = {}  # position -> port, bound until every port is chosen
        for position, port in sorted(enumerate(requested), key=lambda item: item[1] == 0):
            if port and not 0 < port < 65536:
                raise GeneratorError(f"port {port} is out of range (1-65535, or 0 for a free one)")
            sock = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            try:
                sock.bind((host, port))
            except OSError:
                raise GeneratorError(f"port {port} on {host} is already in use; pick another or pass 0 for a free one") from None
            held[position] = sock.getsockname()[1]
    return tuple(held[position] for position in range(len(requested)))
