"""assets.extra/tf_serving_warmup_requests: one PredictionLog per signature.

TF Serving replays these when it loads a version, so the first real request
does not pay for graph warm-up.
"""
from pathlib import Path
from typing import Dict, List

import numpy as np
import tensorflow as tf
from tensorflow_serving.apis import prediction_log_pb2

from tf_profiles.serving.tensors import predict_request

WARMUP_FILE = "tf_serving_warmup_requests"


def write_warmup(path: Path, model_name: str, requests: Dict[str, Dict[str, np.ndarray]]):
    """Writes one PredictionLog per (signature, inputs) into ``path`` (a TFRecord)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tf.io.TFRecordWriter(str(path)) as writer:
        for signature, inputs in requests.items():
            log = prediction_log_pb2.PredictionLog(
                predict_log=prediction_log_pb2.PredictLog(
                    request=predict_request(model_name, signature, inputs)))
            writer.write(log.SerializeToString())


def read_warmup(path: Path) -> List[prediction_log_pb2.PredictionLog]:
    return [prediction_log_pb2.PredictionLog.FromString(record.numpy())
            for record in tf.data.TFRecordDataset(str(path))]
