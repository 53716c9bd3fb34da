"""The reference point for lookup throughput: a PredictionService that does
only what a profile lookup must (hash lookup + gather) on the same data.

Started by benchmarks/serving_grpc.py as a separate process:
    python benchmarks/minimal_lookup_server.py VERSION_DIR PORT
"""
import sys
from concurrent import futures

import tf_profiles  # noqa: F401  (Keras 2 before TensorFlow)
import grpc
import numpy as np
import tensorflow as tf
import tensorflow_text  # noqa: F401
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

from tf_profiles.features.spec import USER_ID
from tf_profiles.serving.tensors import GRPC_OPTIONS, parse_tensor, write_tensor


class MinimalLookup(prediction_service_pb2_grpc.PredictionServiceServicer):
    def __init__(self, version_dir):
        loaded = tf.saved_model.load(version_dir)
        self.embedding = loaded.profile_embedding.numpy()
        self.text = loaded.profile_text.numpy()
        self.interests = loaded.interests.numpy()
        self.weights = loaded.interest_weights.numpy()
        # The servable's own user id → profile row table (row 0: the empty profile).
        ids, rows = tf.raw_ops.LookupTableExportV2(
            table_handle=loaded.model.preprocessor.user_text.table.resource_handle,
            Tkeys=tf.string, Tvalues=tf.int64)
        self.rows = dict(zip(ids.numpy().tolist(), rows.numpy().tolist()))

    def Predict(self, request, context):
        # Same C++ (de)serialization as the tf_profiles server, so the
        # comparison is of the lookup itself, not of proto building.
        ids = parse_tensor(request.inputs[USER_ID]).numpy()
        rows = np.array([self.rows.get(i, 0) for i in ids])
        found = rows > 0
        response = predict_pb2.PredictResponse()
        outputs = {"found": found, "embedding": self.embedding[rows] * found[:, None],
                   "profile_text": np.where(found, self.text[rows], b""),
                   "interests": np.where(found[:, None], self.interests[rows], b""),
                   "interest_weights": self.weights[rows] * found[:, None]}
        for name, value in outputs.items():
            write_tensor(value, response.outputs[name])
        return response


def main():
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=16), options=GRPC_OPTIONS)
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(
        MinimalLookup(sys.argv[1]), server)
    server.add_insecure_port(f"127.0.0.1:{sys.argv[2]}")
    server.start()
    print("ready", flush=True)
    server.wait_for_termination()


if __name__ == "__main__":
    main()
