import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from tf_profiles.cli import main

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
                 "--output", str(model), "--epochs", "2", "--seed", "1",
                 "--cache-dir", str(tmp_path / "cache")]) == 0
    assert read_json(model / "config.json")["encoder"].endswith("model")
    assert main(["evaluate", "--model", str(model)]) == 0
    table = capsys.readouterr().out
    assert "| tf_profiles (this model) |" in table and "| EASE |" in table
    report = read_json(model / "evaluation.json")
    assert report["test_rows"] == 150 and report["candidates"] == 1682
    ours = report["metrics"]["tf_profiles (this model)"]
    # Trained for two epochs on 150 users it must still beat popularity.
    assert ours["Recall@50"] > report["metrics"]["MostPop"]["Recall@50"]
