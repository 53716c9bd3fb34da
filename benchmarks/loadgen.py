"""Load and malformed-request drivers for a PredictionService endpoint.

The load test (tests/devserver/test_server_load.py) and the load benchmark
(benchmarks/serving_load.py) drive a server through the same requests from
here, so the published figures come from what the tests check. A test and
benchmark driver, not library code: it lives beside the benchmarks.
"""
import os
import random
import threading
import time
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import grpc
import numpy as np
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

from tf_profiles.features.history import pad_left
from tf_profiles.features.spec import (HISTORY, ITEM_EMBEDDING, ITEM_ID, ITEM_TEXT,
                                       LOOKUP_PROFILES, PADDING_ID, SERVING_DEFAULT,
                                       SIGNATURE_OUTPUTS, USER_EMBEDDING, USER_ID, USER_TEXT)
from tf_profiles.serving.tensors import GRPC_OPTIONS, decode_outputs, predict_request

KINDS = (LOOKUP_PROFILES, SERVING_DEFAULT, USER_EMBEDDING, ITEM_EMBEDDING)


def rss_bytes(pid: Optional[int] = None) -> int:
    """Resident memory of a process (default: this one), from /proc (Linux)."""
    with open(f"/proc/{pid or 'self'}/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


# === Load ===

@dataclass
class Call:
    """One request: its kind, when it started (time.monotonic), how long it
    took, the version that answered (0 if none) and the error ("" if none)."""
    kind: str
    started: float
    seconds: float
    version: int
    error: str


@dataclass
class LoadResult:
    calls: List[Call]
    clients: int
    seconds: float

    def failures(self) -> List[Call]:
        return [call for call in self.calls if call.error]

    def latency_ms(self, percentile: float, kind: Optional[str] = None) -> float:
        times = [c.seconds for c in self.calls if kind is None or c.kind == kind]
        return float(np.percentile(times, percentile) * 1e3) if times else float("nan")

    def summary(self) -> dict:
        kinds = {kind: {"requests": sum(c.kind == kind for c in self.calls),
                        "p50_ms": round(self.latency_ms(50, kind), 2),
                        "p99_ms": round(self.latency_ms(99, kind), 2)} for kind in KINDS}
        return {"requests": len(self.calls), "clients": self.clients,
                "failures": len(self.failures()), "seconds": round(self.seconds, 2),
                "requests_per_second": round(len(self.calls) / self.seconds, 1),
                "p50_ms": round(self.latency_ms(50), 2), "p99_ms": round(self.latency_ms(99), 2),
                "by_kind": kinds}


def mixed_requests(model_name: str, user_ids: Sequence[str], item_ids: Sequence[str],
                   variants: int = 32, max_batch: int = 16, history: int = 10,
                   seed: int = 0) -> Dict[str, List[Tuple[predict_pb2.PredictRequest, int]]]:
    """Per signature, ``variants`` (request, rows) pairs over known and unknown ids.

    A quarter of the user rows carry free text and a quarter of the item
    rows are new items described by text, so the encoder runs; the rest
    use the text stored at export.
    """
    rng = np.random.default_rng(seed)
    users = np.array([u.encode() for u in user_ids] + [b"unknown-user"], dtype=object)
    items = np.array([i.encode() for i in item_ids], dtype=object)
    texts = [b"", b"", b"", b"likes old westerns and science fiction"]
    pools = {kind: [] for kind in KINDS}
    for _ in range(variants):
        rows = int(rng.integers(1, max_batch + 1))
        user_batch = rng.choice(users, rows)
        widths = rng.integers(0, history + 1, rows)
        histories = pad_left([rng.choice(items, width) for width in widths], width=history,
                             fill=PADDING_ID.encode())
        user_texts = np.array([texts[i] for i in rng.integers(len(texts), size=rows)],
                              dtype=object)
        user_inputs = {USER_ID: user_batch, HISTORY: histories, USER_TEXT: user_texts}
        new_items = np.array([b"new-item-%d" % i for i in range(rows)], dtype=object)
        item_batch = np.where(rng.random(rows) < 0.75, rng.choice(items, rows), new_items)
        item_texts = np.where(item_batch == new_items, b"A new film. Genres: Drama.", b"")
        inputs = {LOOKUP_PROFILES: {USER_ID: user_batch},
                  SERVING_DEFAULT: user_inputs, USER_EMBEDDING: user_inputs,
                  ITEM_EMBEDDING: {ITEM_ID: item_batch, ITEM_TEXT: item_texts.astype(object)}}
        for kind in KINDS:
            pools[kind].append((predict_request(model_name, kind, inputs[kind]), rows))
    return pools


def run_load(target: str, pools: Dict[str, List[Tuple[predict_pb2.PredictRequest, int]]],
             requests: int, clients: int = 64, stop: Optional[threading.Event] = None,
             pause: float = 0.0, timeout: float = 60.0, seed: int = 0) -> LoadResult:
    """Sends ``requests`` requests from ``clients`` threads, each on its own channel.

    Kinds take turns (an even mix); each thread picks the variant at random.
    An answer missing an output or with the wrong number of rows counts as
    a failure like an error status does.

    Args:
      stop: when set, the threads stop early (e.g. a run paced by another task).
      pause: seconds each client waits after an answer (0: closed loop, as
        fast as the server answers; more leaves CPU to other work).
    """
    stop = stop or threading.Event()
    issued = iter(range(requests))  # next() on a range iterator is atomic under the GIL
    lock = threading.Lock()
    calls: List[Call] = []
    start = threading.Barrier(clients)

    def client(number):
        rng = random.Random(seed * 1000 + number)
        mine = []
        with grpc.insecure_channel(target, options=GRPC_OPTIONS) as channel:
            stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
            start.wait()
            for index in issued:
                if stop.is_set():
                    break
                kind = KINDS[index % len(KINDS)]
                request, rows = rng.choice(pools[kind])
                began = time.monotonic()
                try:
                    response = stub.Predict(request, timeout=timeout)
                    version, error = response.model_spec.version.value, _check(
                        response, kind, rows)
                except grpc.RpcError as failure:
                    version, error = 0, f"{failure.code().name}: {failure.details()}"
                mine.append(Call(kind, began, time.monotonic() - began, version, error))
                stop.wait(pause)
        with lock:
            calls.extend(mine)

    threads = [threading.Thread(target=client, args=(n,), name=f"load-client-{n}")
               for n in range(clients)]
    began = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    calls.sort(key=lambda call: call.started)
    return LoadResult(calls, clients, time.monotonic() - began)


def _check(response, kind, rows) -> str:
    missing = set(SIGNATURE_OUTPUTS[kind]) - set(response.outputs)
    if missing:
        return f"bad answer: no {', '.join(sorted(missing))}"
    batch = {name: proto.tensor_shape.dim[0].size for name, proto in response.outputs.items()}
    if set(batch.values()) != {rows}:
        return f"bad answer: {rows} rows sent, output rows {batch}"
    return ""


# === Malformed requests ===

@dataclass
class BadRequest:
    """A request a client may get wrong, and the answer TF Serving gives it.

    ``expected`` holds the acceptable status code names ("OK" = answered);
    for an answer, ``check`` says whether its outputs are right.
    """
    name: str
    request: predict_pb2.PredictRequest
    expected: Tuple[str, ...]
    check: Optional[Callable[[Dict[str, np.ndarray]], bool]] = None


def bad_requests(model_name: str, user_id: str, item_id: str) -> List[BadRequest]:
    """Wrong dtypes, ranks and names, and legal but extreme inputs."""
    def request(signature, inputs, name=model_name, **spec):
        return predict_request(name, signature, inputs, **spec)

    def strings(*values):
        return np.array(list(values), dtype=object)

    user, item = user_id.encode(), item_id.encode()
    one_user = {USER_ID: strings(user), HISTORY: strings([item]),
                USER_TEXT: strings(b"")}
    empty_user = {USER_ID: np.zeros([0], object), HISTORY: np.zeros([0, 1], object),
                  USER_TEXT: np.zeros([0], object)}
    megabyte = b"drama " * ((1 << 20) // 6)
    cases = [
        BadRequest("int64 ids", request(LOOKUP_PROFILES, {USER_ID: np.array([1, 2])}),
                   ("INVALID_ARGUMENT",)),
        BadRequest("float history", request(SERVING_DEFAULT, {
            **one_user, HISTORY: np.array([[1.5]], np.float32)}), ("INVALID_ARGUMENT",)),
        BadRequest("2-D ids (wrong rank)", request(
            LOOKUP_PROFILES, {USER_ID: strings([user])}), ("INVALID_ARGUMENT",)),
        BadRequest("scalar id (wrong rank)", request(
            LOOKUP_PROFILES, {USER_ID: np.array(user, dtype=object)}), ("INVALID_ARGUMENT",)),
        BadRequest("1-D history (wrong rank)", request(
            USER_EMBEDDING, {**one_user, HISTORY: strings(item)}), ("INVALID_ARGUMENT",)),
        BadRequest("batch sizes disagree", request(
            SERVING_DEFAULT, {**one_user, USER_ID: strings(user, user)}),
            ("INVALID_ARGUMENT",)),
        BadRequest("empty batch: lookup_profiles", request(
            LOOKUP_PROFILES, {USER_ID: np.zeros([0], object)}), ("OK",),
            lambda out: all(len(v) == 0 for v in out.values())),
        BadRequest("empty batch: serving_default", request(SERVING_DEFAULT, empty_user),
                   ("OK",), lambda out: out["item_ids"].shape[0] == 0),
        BadRequest("empty batch: item_embedding", request(ITEM_EMBEDDING, {
            ITEM_ID: np.zeros([0], object), ITEM_TEXT: np.zeros([0], object)}), ("OK",),
            lambda out: out["embedding"].shape[0] == 0),
        BadRequest("100,000 ids in one lookup", request(LOOKUP_PROFILES, {
            USER_ID: np.array([user] * 99_999 + [b"unknown-user"], dtype=object)}),
            ("OK", "RESOURCE_EXHAUSTED"),
            lambda out: out["found"].shape == (100_000,) and out["found"][:-1].all()
            and not out["found"][-1]),
        BadRequest("non-UTF-8 id", request(LOOKUP_PROFILES, {
            USER_ID: strings(b"\xff\xfe\x80")}), ("OK",),
            lambda out: not out["found"][0]),
        BadRequest("non-UTF-8 user text and history", request(SERVING_DEFAULT, {
            USER_ID: strings(user), HISTORY: strings([b"\xff\x80"]),
            USER_TEXT: strings(b"\xff\xfe likes \xc3")}), ("OK",),
            lambda out: out["item_ids"].shape[0] == 1),
        BadRequest("non-UTF-8 item text", request(ITEM_EMBEDDING, {
            ITEM_ID: strings(b"new"), ITEM_TEXT: strings(b"\xff\xfe drama \xc3")}),
            ("OK",), lambda out: np.isfinite(out["embedding"]).all()),
        BadRequest("1 MB user text", request(SERVING_DEFAULT, {
            **one_user, USER_TEXT: strings(megabyte)}), ("OK",),
            lambda out: out["item_ids"].shape[0] == 1),
        BadRequest("1 MB item text", request(ITEM_EMBEDDING, {
            ITEM_ID: strings(b"new"), ITEM_TEXT: strings(megabyte)}), ("OK",),
            lambda out: np.isfinite(out["embedding"]).all()),
        BadRequest("1 MB id", request(LOOKUP_PROFILES, {USER_ID: strings(megabyte)}),
                   ("OK",), lambda out: not out["found"][0]),
        BadRequest("missing input", request(SERVING_DEFAULT, {USER_ID: strings(user)}),
                   ("INVALID_ARGUMENT",)),
        BadRequest("unknown input", request(LOOKUP_PROFILES, {
            USER_ID: strings(user), "user": strings(user)}), ("INVALID_ARGUMENT",)),
        BadRequest("unknown signature", request("recommend", {USER_ID: strings(user)}),
                   ("FAILED_PRECONDITION",)),
        BadRequest("unknown model", request(LOOKUP_PROFILES, {USER_ID: strings(user)},
                                            name="no-such-model"), ("NOT_FOUND",)),
        BadRequest("no model name", request(LOOKUP_PROFILES, {USER_ID: strings(user)},
                                            name=""), ("INVALID_ARGUMENT",)),
        BadRequest("unknown version", request(LOOKUP_PROFILES, {USER_ID: strings(user)},
                                              version=999), ("NOT_FOUND",)),
        BadRequest("unknown version label", request(
            LOOKUP_PROFILES, {USER_ID: strings(user)}, version_label="canary"),
            ("INVALID_ARGUMENT",)),
    ]
    unknown_output = request(LOOKUP_PROFILES, {USER_ID: strings(user)})
    unknown_output.output_filter.append("score")
    undefined_dtype = request(LOOKUP_PROFILES, {USER_ID: strings(user)})
    undefined_dtype.inputs[USER_ID].dtype = 999
    huge_shape = request(LOOKUP_PROFILES, {USER_ID: strings(user)})
    huge_shape.inputs[USER_ID].tensor_shape.dim[0].size = 1 << 40
    fewer_values = request(LOOKUP_PROFILES, {USER_ID: strings(user, b"unknown-user")})
    fewer_values.inputs[USER_ID].tensor_shape.dim[0].size = 3
    cases += [
        BadRequest("unknown output filter", unknown_output, ("INVALID_ARGUMENT",)),
        BadRequest("undefined dtype enum (999)", undefined_dtype, ("INVALID_ARGUMENT",)),
        BadRequest("shape of 2**40 ids in a 10-byte tensor", huge_shape,
                   ("INVALID_ARGUMENT",)),
        # TensorFlow fills a short TensorProto with its last value, as TF Serving does.
        BadRequest("3 ids declared, 2 sent", fewer_values, ("OK",),
                   lambda out: out["found"].tolist() == [True, False, False]),
    ]
    return cases


def send_bad_request(stub, case: BadRequest, timeout: float = 120.0) -> Tuple[str, str, float]:
    """(status code name, details or "answered"/"wrong answer", seconds) for one case."""
    began = time.monotonic()
    try:
        response = stub.Predict(case.request, timeout=timeout)
    except grpc.RpcError as error:
        return error.code().name, error.details(), time.monotonic() - began
    right = case.check is None or case.check(decode_outputs(response))
    return "OK", "answered" if right else "wrong answer", time.monotonic() - began
