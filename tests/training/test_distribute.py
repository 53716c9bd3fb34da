import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from tf_profiles.cli import main
from tf_profiles.data.loaders import load_dataset
from tf_profiles.bundle.model_dir import ModelDir
from tf_profiles.bundle.config import TrainConfig
from tf_profiles.training.distribute import local_tf_configs, make_strategy
from tf_profiles.training.trainer import train

from tests.conftest import read_json

ROOT = Path(__file__).resolve().parents[2]
# Dropout draws different random numbers on a replica's slice than on the
# whole batch; without it, one and two workers take the same steps. Early
# stopping is off (patience beyond the epochs): these tests compare and
# resume whole runs.
TINY = dict(epochs=3, batch_size=16, embedding_dim=8, max_history=4, num_layers=1,
            text_max_length=16, dropout=0.0, id_dropout=0.0, user_id_dropout=0.0, patience=100)


def _config_file(tmp_path, tiny_bert, **overrides) -> Path:
    path = tmp_path / "config.json"
    path.write_text(json.dumps({**TINY, "encoder": str(tiny_bert), **overrides}))
    return path


def _train_command(data, config_file, output, cache_dir, *extra):
    return [sys.executable, "-m", "tf_profiles.cli", "train",
            "--interactions", str(data["interactions"]), "--items", str(data["items"]),
            "--users", str(data["users"]), "--config", str(config_file),
            "--output", str(output), "--cache-dir", str(cache_dir), *extra]


def _tail(path: Path, lines=30) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def test_strategy_names_and_tf_config_errors_say_what_is_wrong(monkeypatch):
    with pytest.raises(ValueError, match="strategy 'tpu'.*multi-worker"):
        make_strategy("tpu")
    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(ValueError, match="needs the TF_CONFIG environment variable"):
        make_strategy("multi-worker")
    monkeypatch.setenv("TF_CONFIG", "{cluster: }")
    with pytest.raises(ValueError, match="TF_CONFIG is not JSON"):
        make_strategy("multi-worker")
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": {"worker": ["h:1", "h:2"]}}))
    with pytest.raises(ValueError, match="task.type and task.index"):
        make_strategy("multi-worker")


def test_cli_multi_worker_without_tf_config_is_one_clear_line(tiny_data, tmp_path, capsys,
                                                              monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    code = main(["train", "--interactions", str(tiny_data["interactions"]),
                 "--items", str(tiny_data["items"]), "--output", str(tmp_path / "model"),
                 "--strategy", "multi-worker"])
    error = capsys.readouterr().err
    assert code == 2 and "needs the TF_CONFIG environment variable" in error
    assert not (tmp_path / "model").exists()


def test_mirrored_strategy_on_one_cpu_trains_like_the_default(tiny_bert, tiny_data, cache_dir,
                                                             tmp_path):
    dataset = load_dataset(tiny_data["interactions"], tiny_data["items"], tiny_data["users"])
    # With pseudo-queries: their embeddings, looked up in the step, are made
    # outside the strategy's scope and must serve its replicas too.
    config = TrainConfig(**{**TINY, "epochs": 2, "query_fraction": 0.5, "recipe": "per-event"},
                         encoder=str(tiny_bert))
    mirrored = make_strategy("mirrored")
    assert isinstance(mirrored, tf.distribute.MirroredStrategy)
    assert mirrored.extended.worker_devices == ("/job:localhost/replica:0/task:0/device:CPU:0",)
    metrics = train(dataset, config, tmp_path / "mirrored", cache_dir, strategy=mirrored)
    ModelDir(tmp_path / "mirrored").check()
    assert metrics["replicas"] == 1 and len(metrics["epoch_seconds"]) == 2
    assert not (tmp_path / "mirrored" / "backup" / "chief").exists()  # deleted at the end
    reference = train(dataset, config, tmp_path / "default", cache_dir)
    assert metrics["history"]["loss"] == pytest.approx(reference["history"]["loss"], rel=1e-4)


@pytest.mark.slow
def test_two_workers_take_the_one_worker_steps(tiny_bert, tiny_data, cache_dir, tmp_path):
    """Two local processes with TF_CONFIG: same losses and weights as one worker."""
    config_file = _config_file(tmp_path, tiny_bert)
    worker_tmp = tmp_path / "worker_tmp"
    worker_tmp.mkdir()
    workers, logs = [], []
    for index, tf_config in enumerate(local_tf_configs(2)):
        env = {**os.environ, "TF_CONFIG": tf_config, "TMPDIR": str(worker_tmp)}
        logs.append(tmp_path / f"worker{index}.log")
        # Separate caches: the workers embed the texts at the same time.
        command = _train_command(tiny_data, config_file, tmp_path / "two",
                                 tmp_path / f"cache{index}", "--strategy", "multi-worker")
        with logs[-1].open("w") as log:
            workers.append(subprocess.Popen(command, cwd=ROOT, env=env, stdout=log,
                                            stderr=subprocess.STDOUT))
    # Meanwhile, the reference: one worker, same global batch, same seed.
    dataset = load_dataset(tiny_data["interactions"], tiny_data["items"], tiny_data["users"])
    config = TrainConfig.from_file(config_file)
    one = train(dataset, config, tmp_path / "one", cache_dir)
    try:
        codes = [worker.wait(timeout=240) for worker in workers]
    finally:
        for worker in workers:
            worker.kill()
    assert codes == [0, 0], "\n\n".join(_tail(log) for log in logs)

    two = read_json(tmp_path / "two" / "metrics.json")
    assert two["replicas"] == 2 and two["examples"] == one["examples"]
    # With every replica's candidates as negatives, the losses are the
    # one-worker losses (each replica alone would see half the negatives:
    # a visibly lower loss).
    assert two["history"]["loss"] == pytest.approx(one["history"]["loss"], rel=1e-4)
    first, second = ModelDir(tmp_path / "one").load_model(), ModelDir(tmp_path / "two").load_model()
    # One worker keeps its best validation epoch, a multi-worker run its last
    # (see training.trainer._callbacks): compare the last epoch of both.
    last = ModelDir(tmp_path / "one").checkpoint_dir / f"epoch-{config.epochs:03d}"
    tf.train.Checkpoint(user_tower=first.user_tower, item_tower=first.item_tower).read(
        str(last)).assert_existing_objects_matched()
    ids = tf.constant([f"i{i}" for i in range(15)])
    np.testing.assert_allclose(first.item_embedding({"item_id": ids}).numpy(),
                               second.item_embedding({"item_id": ids}).numpy(), atol=1e-4)

    # The chief (worker 0) validated and wrote the folder; worker 1 wrote
    # only into its temporary folder, now removed.
    assert "val NDCG@10" in logs[0].read_text() and "val NDCG@10" not in logs[1].read_text()
    assert "val_ndcg@10" in two["history"]
    assert not list((tmp_path / "two").rglob("workertemp*"))
    assert not list(worker_tmp.iterdir())


@pytest.mark.slow
def test_training_resumes_from_the_backup_after_a_kill(tiny_bert, tiny_data, tmp_path):
    epochs = 12
    config_file = _config_file(tmp_path, tiny_bert, epochs=epochs)
    output = tmp_path / "model"
    command = _train_command(tiny_data, config_file, output, tmp_path / "cache")
    backup = ModelDir(output).backup_dir / "chief"
    log = tmp_path / "first.log"
    with log.open("w") as stream:
        first = subprocess.Popen(command, cwd=ROOT, stdout=stream, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 120
        # The checkpoint index is written last: once it exists the backup is whole.
        while not (backup / "checkpoint").exists():
            assert first.poll() is None, _tail(log)
            assert time.monotonic() < deadline, _tail(log)
            time.sleep(0.01)
        first.send_signal(signal.SIGKILL)
    finally:
        first.kill()
        first.wait()
    assert first.returncode == -signal.SIGKILL
    saved_epoch = int(tf.train.load_variable(
        str(backup), "ckpt_saved_epoch/.ATTRIBUTES/VARIABLE_VALUE"))  # 0-based, completed
    assert 0 <= saved_epoch < epochs - 1

    second = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=240)
    assert second.returncode == 0, second.stderr[-3000:]
    # "Epoch N/M: loss ..." once per epoch (stdout is not a terminal).
    started = [line.split(":")[0] for line in second.stdout.splitlines()
               if line.startswith("Epoch ")]
    assert started[0] == f"Epoch {saved_epoch + 2}/{epochs}"  # not "Epoch 1/12"
    history = read_json(output / "metrics.json")["history"]
    assert len(history["loss"]) == epochs - saved_epoch - 1
    assert (output / "model.keras").exists() and not backup.exists()
