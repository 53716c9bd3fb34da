import dataclasses
import inspect
import json

import pytest

from tf_profiles.bundle.config import PER_EVENT, TrainConfig


def test_config_is_the_constructor_arguments(tmp_path):
    config = TrainConfig(**PER_EVENT, query_fraction=0.25)
    assert set(config.to_dict()) == set(inspect.signature(TrainConfig).parameters)
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config.to_dict()))
    assert TrainConfig.from_file(path) == config
    assert TrainConfig().query_fraction == 0.0  # what the measurements chose


@pytest.mark.parametrize("fraction", [-0.01, 1.01, 5])
def test_query_fraction_outside_0_1_is_refused(fraction):
    with pytest.raises(ValueError, match=r"query_fraction must be in \[0, 1\].*got"):
        TrainConfig(**PER_EVENT, query_fraction=fraction)


def test_query_fraction_bounds_are_allowed():
    per_event = TrainConfig(**PER_EVENT)
    assert dataclasses.replace(per_event, query_fraction=1.0).query_fraction == 1.0
    assert TrainConfig(query_fraction=0).query_fraction == 0
