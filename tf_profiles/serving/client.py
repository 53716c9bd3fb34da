"""Client for the exported signatures, over TF Serving's gRPC or REST API.

Works against the TensorFlow Serving model server and the local development
server alike: only tensorflow-serving-api's stubs and protos are used, and
for REST a stub with the same methods (rest_client.py).
"""
import random
import time
from concurrent import futures
from typing import Dict, List, Optional, Sequence

import grpc
import numpy as np
import pandas as pd
import tensorflow as tf
from tensorflow_serving.apis import (get_model_metadata_pb2, get_model_status_pb2,
                                     model_service_pb2_grpc, prediction_service_pb2_grpc)

from tf_profiles.errors import UserError
from tf_profiles.features.history import pad_left
from tf_profiles.features.spec import (HISTORY, ITEM_EMBEDDING, ITEM_ID, ITEM_TEXT,
                                       LOOKUP_PROFILES, PADDING_ID, SERVING_DEFAULT,
                                       USER_EMBEDDING, USER_ID, USER_TEXT)
from tf_profiles.serving import rest_client, tensors


class ServingClient:
    """Batched, retrying calls to one served model.

    Args:
      target: "host:port" of the gRPC endpoint (TF Serving: 8500), or of the
        REST API (8501) with ``protocol="rest"``.
      model_name: the served model's name.
      version, version_label: pin a version (default: the newest served).
      timeout: deadline per request, in seconds.
      max_batch_size: rows per request; bigger inputs are split into chunks
        of at most this size (match the server's max_batch_size), sent
        concurrently and reassembled in order.
      max_workers: concurrent requests per call.
      max_retries, backoff_seconds: retries on UNAVAILABLE only (a server
        restarting), with exponential backoff and jitter; every other error
        is raised at once. Over REST: connection refused and HTTP 503; errors
        are ``grpc.RpcError``s there too (rest_client.RestError).
      protocol: "grpc" or "rest"; both give the same results.
    """

    def __init__(self, target: str, model_name: str, version: Optional[int] = None,
                 version_label: Optional[str] = None, timeout: float = 10.0,
                 max_batch_size: int = 256, max_workers: int = 4, max_retries: int = 3,
                 backoff_seconds: float = 0.1, protocol: str = "grpc"):
        if version is not None and version_label:
            raise UserError("pin a version or a version label, not both")
        if protocol not in ("grpc", "rest"):
            raise UserError(f'protocol is "grpc" or "rest", not {protocol!r}')
        self.model_name, self.version, self.version_label = model_name, version, version_label
        self.timeout, self.max_batch_size = timeout, max_batch_size
        self.max_retries, self.backoff_seconds = max_retries, backoff_seconds
        if protocol == "rest":
            self.channel = None
            self.predictions = self.models = rest_client.RestStub(target)
        else:
            self.channel = grpc.insecure_channel(target, options=tensors.GRPC_OPTIONS)
            self.predictions = prediction_service_pb2_grpc.PredictionServiceStub(self.channel)
            self.models = model_service_pb2_grpc.ModelServiceStub(self.channel)
        self._pool = futures.ThreadPoolExecutor(max_workers=max_workers)

    def close(self):
        self._pool.shutdown(wait=False)
        if self.channel:
            self.channel.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _model_spec(self):
        return tensors.model_spec(self.model_name, version=self.version,
                                  version_label=self.version_label)

    def _call(self, method, request):
        for attempt in range(self.max_retries + 1):
            try:
                return method(request, timeout=self.timeout)
            except grpc.RpcError as error:
                if error.code() != grpc.StatusCode.UNAVAILABLE or attempt == self.max_retries:
                    raise
                time.sleep(self.backoff_seconds * 2 ** attempt * (1 + random.random()))

    # === Generic calls ===

    def predict(self, signature: str, inputs: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
        """One Predict request; outputs as numpy arrays."""
        request = tensors.predict_request(self.model_name, signature, inputs, self.version,
                                          self.version_label)
        return tensors.decode_outputs(self._call(self.predictions.Predict, request))

    def predict_batched(self, signature: str,
                        inputs: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
        """Splits rows into chunks of ``max_batch_size``, sent concurrently, joined in order."""
        rows = len(next(iter(inputs.values())))
        if rows == 0:
            raise UserError("no rows to send")
        starts = range(0, rows, self.max_batch_size)
        chunks = [{k: v[s:s + self.max_batch_size] for k, v in inputs.items()} for s in starts]
        results = list(self._pool.map(lambda chunk: self.predict(signature, chunk), chunks))
        return {name: np.concatenate([r[name] for r in results]) for name in results[0]}

    def metadata(self) -> Dict[str, Dict[str, Dict[str, str]]]:
        """{signature: {"inputs": {name: dtype}, "outputs": {name: dtype}}}."""
        request = get_model_metadata_pb2.GetModelMetadataRequest(
            model_spec=self._model_spec(), metadata_field=["signature_def"])
        response = self._call(self.predictions.GetModelMetadata, request)
        signature_map = get_model_metadata_pb2.SignatureDefMap()
        response.metadata["signature_def"].Unpack(signature_map)
        def dtypes(tensors):
            return {key: tf.dtypes.as_dtype(info.dtype).name for key, info in tensors.items()}

        return {name: {"inputs": dtypes(d.inputs), "outputs": dtypes(d.outputs)}
                for name, d in signature_map.signature_def.items()}

    def status(self) -> List[Dict[str, object]]:
        """[{"version": 3, "state": "AVAILABLE"}, ...]."""
        request = get_model_status_pb2.GetModelStatusRequest(model_spec=self._model_spec())
        response = self._call(self.models.GetModelStatus, request)
        state_name = get_model_status_pb2.ModelVersionStatus.State.Name
        return [{"version": s.version, "state": state_name(s.state)}
                for s in response.model_version_status]

    # === The contract's signatures ===

    @staticmethod
    def _user_inputs(user_ids, histories, user_texts):
        user_ids = [str(u) for u in user_ids]
        histories = histories if histories is not None else [[] for _ in user_ids]
        user_texts = user_texts if user_texts is not None else [""] * len(user_ids)
        if not len(histories) == len(user_texts) == len(user_ids):
            raise UserError(f"{len(user_ids)} user ids, {len(histories)} histories and "
                            f"{len(user_texts)} texts: one of each per user")
        return {USER_ID: np.array([u.encode() for u in user_ids], dtype=object),
                HISTORY: pad_left([[str(i).encode() for i in items] for items in histories],
                                  fill=PADDING_ID.encode()),
                USER_TEXT: np.array([t.encode() for t in user_texts], dtype=object)}

    def recommend(self, user_ids: Sequence, histories: Optional[Sequence[Sequence]] = None,
                  user_texts: Optional[Sequence[str]] = None) -> pd.DataFrame:
        """Top-K items per user: columns user_id, rank, item_id, score.

        Args:
          histories: per user, item ids oldest first (None or [] = the stored history).
          user_texts: per user, free text ("" = the stored text).
        """
        inputs = self._user_inputs(user_ids, histories, user_texts)
        outputs = self.predict_batched(SERVING_DEFAULT, inputs)
        k = outputs["item_ids"].shape[1]
        return pd.DataFrame({
            "user_id": np.repeat([str(u) for u in user_ids], k),
            "rank": np.tile(np.arange(1, k + 1), len(user_ids)),
            "item_id": [i.decode() for i in outputs["item_ids"].ravel()],
            "score": outputs["scores"].ravel()})

    def user_embeddings(self, user_ids, histories=None, user_texts=None) -> np.ndarray:
        inputs = self._user_inputs(user_ids, histories, user_texts)
        return self.predict_batched(USER_EMBEDDING, inputs)["embedding"]

    def item_embeddings(self, item_ids, item_texts=None) -> np.ndarray:
        item_texts = item_texts if item_texts is not None else [""] * len(item_ids)
        return self.predict_batched(ITEM_EMBEDDING, {
            ITEM_ID: np.array([str(i).encode() for i in item_ids], dtype=object),
            ITEM_TEXT: np.array([t.encode() for t in item_texts], dtype=object)})["embedding"]

    def lookup_profiles(self, user_ids) -> pd.DataFrame:
        """One row per id: found, embedding, profile_text, interests (tag → weight)."""
        outputs = self.predict_batched(LOOKUP_PROFILES, {
            USER_ID: np.array([str(u).encode() for u in user_ids], dtype=object)})
        interests = [{t.decode(): float(w) for t, w in zip(tags, weights) if t}
                     for tags, weights in zip(outputs["interests"], outputs["interest_weights"])]
        return pd.DataFrame({
            "user_id": [str(u) for u in user_ids], "found": outputs["found"],
            "embedding": list(outputs["embedding"]),
            "profile_text": [t.decode() for t in outputs["profile_text"]],
            "interests": interests})
