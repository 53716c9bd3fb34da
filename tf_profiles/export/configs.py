"""TF Serving configuration files written next to each export.

The batching parameters follow TF Serving's documented starting point for
GPUs (serving/batching_guide.md): num_batch_threads = the number of GPUs
(or cores on CPU), a short batch_timeout_micros, max_enqueued_batches
bounding the queue, allowed_batch_sizes ending at max_batch_size, and
padding of variable-length inputs (the history) so batches can merge.

The docker and Kubernetes files name the TF Serving release built on the
exporting TensorFlow's major.minor: TF Serving X.Y is built with TensorFlow
X.Y and has an X.Y.0 release for every TensorFlow minor release (as
tensorflow-serving-api on PyPI shows), while an older server may lack ops or
attributes the export uses (``tf-profiles check-serving``).
"""
from pathlib import Path
from typing import Optional

from tf_profiles.compat.versions import matching_serving_version, parse_version

MODELS_CONFIG = """model_config_list {{
  config {{
    name: "{name}"
    base_path: "/models/{name}"
    model_platform: "tensorflow"
    model_version_policy {{ latest {{ num_versions: 1 }} }}
  }}
}}
"""

BATCHING_PARAMETERS = """max_batch_size {{ value: {max_batch_size} }}
batch_timeout_micros {{ value: {batch_timeout_micros} }}
max_enqueued_batches {{ value: {max_enqueued_batches} }}
num_batch_threads {{ value: {num_batch_threads} }}
{allowed}
pad_variable_length_inputs: true
"""

COMPOSE = """# TF Serving on a GPU with batching, serving the exports in this folder.
# docker compose up   (needs the NVIDIA container toolkit)
# The ports answer this machine only: the API has no authentication, and a
# stored profile is personal data. Put a proxy with authentication in front,
# or write "8500:8500" to listen on every interface.
services:
  tf-serving:
    image: tensorflow/serving:{serving_version}-gpu
    ports: ["127.0.0.1:8500:8500", "127.0.0.1:8501:8501"]
    volumes:
      - ../:/models/{name}:ro
      - ./:/config:ro
    command:
      - --model_config_file=/config/models.config
      - --model_config_file_poll_wait_seconds=60
      - --file_system_poll_wait_seconds=30
      - --enable_batching=true
      - --batching_parameters_file=/config/batching_parameters.txt
      - --enable_model_warmup=true
    deploy:
      resources:
        reservations:
          devices: [{{driver: nvidia, count: 1, capabilities: [gpu]}}]
"""

KUBERNETES = """# One TF Serving GPU pod per replica, reading the exports from a volume.
apiVersion: apps/v1
kind: Deployment
metadata: {{name: {name}-serving}}
spec:
  replicas: 1
  selector: {{matchLabels: {{app: {name}-serving}}}}
  template:
    metadata: {{labels: {{app: {name}-serving}}}}
    spec:
      containers:
        - name: tf-serving
          image: tensorflow/serving:{serving_version}-gpu
          args:
            - --model_config_file=/config/models.config
            - --enable_batching=true
            - --batching_parameters_file=/config/batching_parameters.txt
            - --enable_model_warmup=true
          ports: [{{containerPort: 8500}}, {{containerPort: 8501}}]
          resources: {{limits: {{nvidia.com/gpu: 1}}}}
          volumeMounts:
            - {{name: models, mountPath: /models/{name}, readOnly: true}}
            - {{name: config, mountPath: /config, readOnly: true}}
      volumes:
        - name: models
          persistentVolumeClaim: {{claimName: {name}-models}}
        - name: config
          configMap: {{name: {name}-serving-config}}
---
apiVersion: v1
kind: Service
metadata: {{name: {name}-serving}}
spec:
  selector: {{app: {name}-serving}}
  ports: [{{name: grpc, port: 8500}}, {{name: rest, port: 8501}}]
"""


def allowed_batch_sizes(max_batch_size: int):
    """Powers of two from 8, ending exactly at ``max_batch_size`` (TF Serving requires it)."""
    sizes, size = [], 8
    while size < max_batch_size:
        sizes.append(size)
        size *= 2
    return sizes + [max_batch_size]


def write_serving_configs(directory: Path, name: str, max_batch_size: int = 256,
                          batch_timeout_micros: int = 2000, num_batch_threads: int = 1,
                          max_enqueued_batches: int = 100,
                          serving_version: Optional[str] = None):
    """Writes models.config, batching_parameters.txt, docker-compose.yml, kubernetes.yaml.

    ``serving_version``: the ``tensorflow/serving:<version>-gpu`` image to
    run; default: the release matching the installed TensorFlow.
    """
    serving_version = serving_version or matching_serving_version()
    parse_version(serving_version)
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    allowed = "\n".join(f"allowed_batch_sizes: {size}"
                        for size in allowed_batch_sizes(max_batch_size))
    files = {
        "models.config": MODELS_CONFIG.format(name=name),
        "batching_parameters.txt": BATCHING_PARAMETERS.format(
            max_batch_size=max_batch_size, batch_timeout_micros=batch_timeout_micros,
            max_enqueued_batches=max_enqueued_batches, num_batch_threads=num_batch_threads,
            allowed=allowed),
        "docker-compose.yml": COMPOSE.format(name=name, serving_version=serving_version),
        "kubernetes.yaml": KUBERNETES.format(name=name, serving_version=serving_version),
    }
    for filename, text in files.items():
        (directory / filename).write_text(text)
    return {filename: directory / filename for filename in files}
