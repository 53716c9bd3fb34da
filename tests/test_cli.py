import json
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from tf_profiles.cli import main, row_notes

from tests.conftest import read_json


def test_data_writes_ml100k_in_the_generic_format(tmp_path, capsys):
    assert main(["data", "ml-100k", "--out", str(tmp_path)]) == 0
    interactions = pd.read_csv(tmp_path / "interactions.csv")
    assert list(interactions.columns) == ["user_id", "item_id", "timestamp", "rating"]
    assert len(interactions) == 100_000
    assert "interactions:" in capsys.readouterr().out


def test_bad_input_is_one_clear_line_not_a_traceback(tmp_path, tiny_data, capsys):
    bad = tmp_path / "bad.csv"
    bad.write_text("user_id,item_id,timestamp\nu0,i1,soon\n")
    code = main(["train", "--interactions", str(bad), "--items", str(tiny_data["items"]),
                 "--output", str(tmp_path / "model")])
    error = capsys.readouterr().err
    assert code == 2
    assert "bad.csv, line 2, column 'timestamp'" in error and "Traceback" not in error
    assert not (tmp_path / "model").exists()  # nothing half-written


def test_row_notes_keep_truncated_texts_apart_from_skipped_rows():
    assert row_notes({}) == []
    assert row_notes({"bad rating": 2, "text truncated": 1}) == [
        'skipped rows: {"bad rating": 2}', 'kept rows, changed: {"text truncated": 1}']
    assert row_notes({"text truncated": 3}) == ['kept rows, changed: {"text truncated": 3}']


def test_train_takes_every_protocol_of_the_splits():
    from tf_profiles.cli import build_parser
    from tf_profiles.data.splits import PROTOCOLS

    required = ["train", "--interactions", "i.csv", "--items", "t.csv", "--output", "m"]
    for protocol in PROTOCOLS:
        assert build_parser().parse_args([*required, "--protocol", protocol]).protocol == protocol


@pytest.mark.parametrize("metrics, message", [
    (None, "cannot read .*metrics.json"),
    ({"train_seconds": 1.0}, ".*metrics.json has no 'selected_epochs'")])
def test_epochs_from_a_folder_without_selected_epochs(tmp_path, tiny_data, metrics, message,
                                                      capsys):
    (tmp_path / "held_out").mkdir()
    if metrics is not None:
        (tmp_path / "held_out" / "metrics.json").write_text(json.dumps(metrics))
    code = main(["train", "--interactions", str(tiny_data["interactions"]),
                 "--items", str(tiny_data["items"]), "--output", str(tmp_path / "model"),
                 "--holdout", "none", "--epochs-from", str(tmp_path / "held_out")])
    assert code == 2
    assert re.search(f"--epochs-from: {message}", capsys.readouterr().err)


def test_epochs_and_epochs_from_exclude_each_other(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["train", "--interactions", "i.csv", "--items", "t.csv", "--output", "m",
              "--epochs", "2", "--epochs-from", str(tmp_path)])
    assert "not allowed with argument" in capsys.readouterr().err


@pytest.mark.slow
def test_deployable_model_trains_on_every_event_for_the_selected_epochs(
        tmp_path, tiny_data, tiny_bert, capsys):
    # The main job: a held-out model selects the epochs, the deployable one
    # trains on everything for that many epochs and is the one exported.
    config = tmp_path / "config.json"
    config.write_text(json.dumps(dict(epochs=3, batch_size=16, embedding_dim=8, max_history=4,
                                      num_layers=1, text_max_length=16)))
    common = ["--interactions", str(tiny_data["interactions"]), "--items",
              str(tiny_data["items"]), "--users", str(tiny_data["users"]),
              "--encoder", str(tiny_bert), "--cache-dir", str(tmp_path / "cache")]
    held_out, deploy = tmp_path / "model", tmp_path / "deploy"
    assert main(["train", *common, "--config", str(config), "--output", str(held_out)]) == 0
    selected = read_json(held_out / "metrics.json")["selected_epochs"]
    assert main(["train", *common, "--config", str(held_out / "config.json"),
                 "--holdout", "none", "--epochs-from", str(held_out),
                 "--output", str(deploy)]) == 0
    assert f"epochs: {selected} (selected on validation" in capsys.readouterr().out
    recorded = read_json(deploy / "config.json")
    assert recorded["holdout"] is False and recorded["epochs"] == selected
    every_event = pd.read_csv(tiny_data["interactions"])
    assert len(pd.read_parquet(deploy / "split" / "train.parquet")) == len(every_event)

    assert main(["evaluate", "--model", str(deploy), "--no-baselines"]) == 2
    assert "no test events" in capsys.readouterr().err
    assert main(["export", "--model", str(deploy), "--export-base",
                 str(tmp_path / "saved")]) == 0
    assert (tmp_path / "saved" / "1" / "saved_model.pb").exists()


def test_evaluate_on_a_folder_that_is_not_a_model(tmp_path, capsys):
    assert main(["evaluate", "--model", str(tmp_path)]) == 2
    assert "not a trained model folder" in capsys.readouterr().err


def test_console_script_is_installed():
    script = Path(sys.executable).parent / "tf-profiles"
    result = subprocess.run([str(script), "--help"], capture_output=True, text=True)
    assert result.returncode == 0
    for command in ("data", "train", "evaluate"):
        assert command in result.stdout


@pytest.mark.slow
def test_real_minilm_on_an_ml100k_slice_end_to_end(ml100k_slice, tmp_path, capsys):
    model = tmp_path / "model"
    assert main(["train", "--interactions", str(ml100k_slice["interactions"]),
                 "--items", str(ml100k_slice["items"]), "--users", str(ml100k_slice["users"]),
                 "--output", str(model), "--epochs", "10", "--seed", "1",
                 "--cache-dir", str(tmp_path / "cache")]) == 0
    assert read_json(model / "config.json")["encoder"].endswith("model")
    assert main(["evaluate", "--model", str(model)]) == 0
    table = capsys.readouterr().out
    assert "| tf_profiles (this model) |" in table and "| EASE |" in table
    report = read_json(model / "evaluation.json")
    assert report["test_rows"] == 150 and report["candidates"] == 1682
    ours = report["metrics"]["tf_profiles (this model)"]
    # Trained for ten (short, causal) epochs on 150 users it must still beat popularity.
    assert ours["Recall@50"] > report["metrics"]["MostPop"]["Recall@50"]


_LOADED_AFTER = """
import json, sys
from tf_profiles.cli import build_parser, main
build_parser().format_help()
codes = [main(argv) for argv in json.loads(sys.argv[1])]
print(json.dumps({"codes": codes, "tensorflow": "tensorflow" in sys.modules}))
"""


def test_help_and_store_commands_start_without_tensorflow(tmp_path, tiny_data):
    store = str(tmp_path / "p.db")
    commands = [["ingest", str(tiny_data["interactions"]), "--store", store,
                 "--items", str(tiny_data["items"])],
                ["delete-user", "u1", "--store", store],
                ["profile", "show", "u2", "--store", store, "--png", str(tmp_path / "u2.png")]]
    done = subprocess.run([sys.executable, "-c", _LOADED_AFTER, json.dumps(commands)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout.splitlines()[-1]) == {"codes": [0, 0, 0], "tensorflow": False}


def test_a_bug_keeps_its_traceback_and_a_user_error_is_one_line(tmp_path, monkeypatch, capsys):
    from tf_profiles import cli

    monkeypatch.setattr(cli, "_delete_user", lambda args: {}["a bug"])
    with pytest.raises(KeyError):
        main(["delete-user", "u1", "--store", str(tmp_path / "p.db")])
    assert main(["profile", "show", "nobody", "--store", str(tmp_path / "p.db")]) == 2
    assert "Traceback" not in capsys.readouterr().err


def test_version_and_defaults_in_help(capsys):
    with pytest.raises(SystemExit):
        main(["--version"])
    assert capsys.readouterr().out.startswith("tf-profiles 0.1.0")
    with pytest.raises(SystemExit):
        main(["serve", "--help"])
    assert "(default: 8500)" in capsys.readouterr().out


@pytest.mark.parametrize("argv", [
    ["query", "--model-name", "m", "recommend", "u1", "--top", "-5"],
    ["query", "--model-name", "m", "--max-batch-size", "0", "status"],
    ["export", "--model", "m", "--export-base", "b", "--k", "-1"],
])
def test_counts_below_one_are_refused_by_the_parser(argv, capsys):
    with pytest.raises(SystemExit) as raised:
        main(argv)
    assert raised.value.code == 2 and "is not a whole number ≥ 1" in capsys.readouterr().err


@pytest.mark.parametrize("argv", [
    ["delete-user", " u2 ", "--store", "p.db"],
    ["profile", "show", " u2 ", "--store", "p.db"],
    ["explain", " u2 ", "i1", "--store", "p.db", "--model", "m"],
    ["query", "--model-name", "m", "lookup", " u2 "],
])
def test_user_ids_are_read_as_ingestion_reads_them(argv):
    from tf_profiles.cli import build_parser

    args = build_parser().parse_args(argv)
    assert (args.ids if args.command == "query" else [args.user_id]) == ["u2"]
