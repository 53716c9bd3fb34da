"""TensorProtos on the wire: the one place that builds requests and decodes answers.

The client, the local server, the warm-up records and the load driver all
encode and decode through here, with the same gRPC message limits, so a
request the client can send is one the server accepts.
"""
from typing import Dict, Optional

import numpy as np
import tensorflow as tf
from tensorflow.core.framework import tensor_pb2
from tensorflow_serving.apis import model_pb2, predict_pb2

# gRPC's default cap of 4 MiB per message is below the answer to a large
# batched lookup; the client and the server raise it alike, or one side fails.
GRPC_OPTIONS = [("grpc.max_receive_message_length", 64 << 20),
                ("grpc.max_send_message_length", 64 << 20)]


def model_spec(model_name: str, signature: str = "", version: Optional[int] = None,
               version_label: Optional[str] = None) -> model_pb2.ModelSpec:
    """A ModelSpec pinned to ``version`` or ``version_label`` (neither: the newest)."""
    spec = model_pb2.ModelSpec(name=model_name, signature_name=signature)
    if version is not None:
        spec.version.value = int(version)
    elif version_label:
        spec.version_label = version_label
    return spec


def predict_request(model_name: str, signature: str, inputs: Dict[str, np.ndarray],
                    version: Optional[int] = None,
                    version_label: Optional[str] = None) -> predict_pb2.PredictRequest:
    """A PredictRequest with ``inputs`` converted by ``tf.make_tensor_proto``."""
    request = predict_pb2.PredictRequest(
        model_spec=model_spec(model_name, signature, version, version_label))
    for name, value in inputs.items():
        request.inputs[name].CopyFrom(tf.make_tensor_proto(value))
    return request


def decode_outputs(response: predict_pb2.PredictResponse) -> Dict[str, np.ndarray]:
    """A PredictResponse's outputs as numpy arrays (strings as bytes objects)."""
    return {name: tf.make_ndarray(proto) for name, proto in response.outputs.items()}


# The server's side: TensorFlow's C++ code (de)serializes, because
# tf.make_ndarray and tf.make_tensor_proto walk string elements in Python,
# which dominates large lookups.

def parse_tensor(proto: tensor_pb2.TensorProto) -> tf.Tensor:
    """The tensor a TensorProto holds.

    Raises:
      tf.errors.InvalidArgumentError: the proto's content does not match its dtype or shape.
    """
    return tf.io.parse_tensor(proto.SerializeToString(), proto.dtype)


def write_tensor(tensor, proto: tensor_pb2.TensorProto):
    """Fills ``proto`` (e.g. ``response.outputs[name]``) with ``tensor``."""
    proto.ParseFromString(tf.io.serialize_tensor(tensor).numpy())
