"""Which ``tf.distribute`` strategy training runs under, and which worker writes files.

    default       one device (TensorFlow's default strategy)
    mirrored      MirroredStrategy: every GPU of this machine (or its CPU)
    multi-worker  MultiWorkerMirroredStrategy: one process per machine, the
                  cluster and this process's place in it read from TF_CONFIG

Under every strategy the configured ``batch_size`` is the global batch: Keras
splits each batch across the replicas, and the two-tower loss gathers every
replica's candidates so the in-batch negatives are the whole global batch.
"""
import json
import os
import shutil
import socket
import tempfile
from pathlib import Path
from typing import List

import tensorflow as tf

from tf_profiles.errors import UserError

STRATEGIES = ("default", "mirrored", "multi-worker")


def make_strategy(name: str) -> tf.distribute.Strategy:
    """Builds the strategy called ``name`` (one of :data:`STRATEGIES`).

    Call it before anything else runs TensorFlow ops: MultiWorkerMirroredStrategy
    configures the collective ops of the process, which is only possible at
    start-up.

    Raises:
      ValueError: an unknown name, or ``multi-worker`` without a usable TF_CONFIG.
    """
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multi-worker":
        _check_tf_config(os.environ.get("TF_CONFIG"))
        return tf.distribute.MultiWorkerMirroredStrategy()
    raise UserError(f"strategy {name!r}: choose one of {', '.join(STRATEGIES)}")


def _check_tf_config(text):
    # Without TF_CONFIG, MultiWorkerMirroredStrategy quietly trains as one
    # local worker: every "worker" of a misconfigured cluster would train
    # alone and write the same model folder.
    if not text:
        raise UserError("strategy 'multi-worker' needs the TF_CONFIG environment variable "
                        "(the cluster's workers and this process's task); see "
                        "docs/distributed_training.md")
    try:
        config = json.loads(text)
    except json.JSONDecodeError as error:
        raise UserError(f"TF_CONFIG is not JSON: {error}") from error
    workers = config.get("cluster", {}).get("worker") if isinstance(config, dict) else None
    task = config.get("task", {}) if isinstance(config, dict) else {}
    if not workers or "type" not in task or "index" not in task:
        raise UserError("TF_CONFIG needs cluster.worker (a list of host:port) and task.type "
                        f"and task.index, got {text!r}")


def is_chief(strategy: tf.distribute.Strategy) -> bool:
    """True on the one worker that writes the model folder (always, on one machine)."""
    return strategy.extended.should_checkpoint


def writing_dir(output_dir: Path, strategy: tf.distribute.Strategy) -> Path:
    """Where this worker writes the model folder: ``output_dir`` on the chief.

    The other workers run the same code (saving a distributed model takes
    every worker) but write into a fresh temporary folder, which
    :func:`remove_writing_dir` deletes, as the TF multi-worker Keras guide does.
    """
    if is_chief(strategy):
        return Path(output_dir)
    return Path(tempfile.mkdtemp(prefix="tf_profiles_worker_"))


def remove_writing_dir(path: Path, strategy: tf.distribute.Strategy):
    """Deletes a non-chief worker's temporary folder; the chief's stays."""
    if not is_chief(strategy):
        shutil.rmtree(path, ignore_errors=True)


def local_tf_configs(workers: int, host: str = "127.0.0.1") -> List[str]:
    """One ``TF_CONFIG`` value (JSON) per worker of a cluster on this machine.

    For trying ``multi-worker`` on one machine: start one training process per
    value, each with its own ``TF_CONFIG``. The ports are free when chosen.
    """
    sockets = [socket.socket() for _ in range(workers)]
    for s in sockets:
        s.bind((host, 0))
    addresses = [f"{host}:{s.getsockname()[1]}" for s in sockets]
    for s in sockets:
        s.close()
    return [json.dumps({"cluster": {"worker": addresses},
                        "task": {"type": "worker", "index": index}})
            for index in range(workers)]
