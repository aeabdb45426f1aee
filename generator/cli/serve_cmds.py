"""`trgen serve` (the embedded Triton on a repository) and `trgen compare` (INT8 vs FP32 accuracy)."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import EXIT_CHECK_FAILED, EXIT_OK, RuntimeFailure
from .common import (
    add_command,
    add_json_file,
    add_selection,
    add_spec,
    add_url,
    open_spec,
    progress_enabled,
)

EXIT_STOPPED_BY_CTRL_C = 130  # 128 + SIGINT, as a shell reports a foreground program stopped with Ctrl-C


def register(sub: argparse._SubParsersAction) -> None:
    serve = add_command(sub, "serve", help="run the bundled Triton server on a model repository until Ctrl-C",
                        description="Serve REPOSITORY with the bundled tritonserver on 127.0.0.1 until Ctrl-C.",
                        examples=("trgen serve model_repository",
                                  "trgen serve model_repository --models mnist_int8 --grpc-port 8001"))
    serve.add_argument("repository", type=Path, help="the model repository folder")
    serve.add_argument("--models", help="comma-separated model names to load (default: all)")
    serve.add_argument("--http-port", type=int, default=0, help="HTTP port (default 0: a free one)")
    serve.add_argument("--grpc-port", type=int, default=0, help="gRPC port (default 0: a free one)")
    serve.add_argument("--metrics-port", type=int, default=0, help="metrics port (default 0: a free one)")
    serve.add_argument("--log", type=Path, help="write the server log here (default: a temporary file)")
    serve.add_argument("--timeout", type=float, default=120.0, help="seconds to wait for readiness (default 120)")
    serve.set_defaults(func=_serve)

    compare = add_command(sub, "compare", help="INT8 vs FP32 on the live server: accuracy, agreement, error statistics",
                          examples=("trgen compare examples/mnist/spec.yaml",
                                    "trgen compare spec.yaml --url localhost:8001 --variant mnist_int8 --json cmp.json"))
    add_spec(compare)
    add_url(compare)
    add_selection(compare, what="int8 variants")
    add_json_file(compare, dest="json_path")
    compare.set_defaults(func=_compare)


def _serve(args: argparse.Namespace) -> int:
    from ..serve import EmbeddedServer

    models = [name.strip() for name in args.models.split(",") if name.strip()] if args.models else None
    server = EmbeddedServer(
        args.repository, models, log_path=args.log, timeout_s=args.timeout,
        http_port=args.http_port, grpc_port=args.grpc_port, metrics_port=args.metrics_port,
    )
    try:
        with server as handle:
            print(f"HTTP     {handle.http_url}", flush=True)
            print(f"gRPC     {handle.grpc_url}", flush=True)
            print(f"metrics  {handle.metrics_url}", flush=True)
            print(f"log      {handle.log_path}", flush=True)
            print(f"pid      {server.pid}", flush=True)
            print("serving; press Ctrl-C to stop", flush=True)
            code = server.wait()
    except KeyboardInterrupt:  # the way to stop `serve`: not a failure, the shell's code for Ctrl-C
        print("stopped", flush=True)
        return EXIT_STOPPED_BY_CTRL_C
    raise RuntimeFailure(f"the Triton server exited on its own (code {code}); server log: {handle.log_path}")


def _compare(args: argparse.Namespace) -> int:
    from ..fileio import atomic_write_json
    from ..pipeline import compare as run_compare

    selection = open_spec(args, command="compare" if args.url is None else "compare-url")
    report = run_compare(selection.spec, url=args.url, model=args.variant or args.model, progress=progress_enabled(args))
    print(report.summary())
    if args.json_path is not None:
        atomic_write_json(args.json_path, report.to_dict())
    if not report:
        print("FAILED: " + "; ".join(report.failures()))
        return EXIT_CHECK_FAILED
    return EXIT_OK
