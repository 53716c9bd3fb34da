"""``tf-profiles serve``: gRPC and, beside it, the REST API, until Ctrl-C."""
import time

from tf_profiles.devserver.grpc_server import RequestLimits, start_server
from tf_profiles.devserver.registry import ModelRegistry
from tf_profiles.devserver.rest import start_rest_server


def serve_forever(registry: ModelRegistry, port: int, host: str, poll_seconds: float,
                  rest_api_port: int = 0, limits: RequestLimits = RequestLimits()):
    """gRPC on ``port`` and, unless ``rest_api_port`` is 0, the REST API beside it."""
    server, bound = start_server(registry, port, host, poll_seconds=poll_seconds,
                                 limits=limits)
    rest, rest_bound = (start_rest_server(registry, rest_api_port, host, limits)
                        if rest_api_port else (None, None))
    served = {name: sorted(m.versions) for name, m in registry.models.items()}
    print(f"serving {served} on {host}:{bound}"
          + (f", REST API on {host}:{rest_bound}" if rest else "") + " (Ctrl-C stops)", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        if rest:
            rest.shutdown()
        server.stop(grace=2)
        registry.stop()
