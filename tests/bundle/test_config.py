import dataclasses
import inspect
import json

import pytest

from tf_profiles.bundle.config import PER_EVENT, TrainConfig
from tf_profiles.models.item_tower import ItemTower
from tf_profiles.models.two_tower import TwoTowerModel
from tf_profiles.models.user_tower import UserTower


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


# TrainConfig field → (class, constructor argument) that takes it. The towers'
# switches that turn a TrainConfig recipe on are listed apart: a plain tower
# is the building block (bidirectional, no bias, no user-ID dropout) and
# build_model sets them from the config.
AGREE = {
    "temperature": (TwoTowerModel, "temperature"),
    "logq_strength": (TwoTowerModel, "logq_strength"),
    "negatives": (TwoTowerModel, "negatives"),
    "mask_seen": (TwoTowerModel, "mask_seen"),
    "embedding_dim": (UserTower, "embedding_dim"),
    "max_history": (UserTower, "max_history"),
    "num_layers": (UserTower, "num_layers"),
    "num_heads": (UserTower, "num_heads"),
    "dropout": (UserTower, "dropout"),
    "id_dropout": (ItemTower, "id_dropout"),
}
BUILDING_BLOCK_SWITCHES = {"recipe": (UserTower, "causal", False),
                           "user_id_dropout": (UserTower, "id_dropout", 0.0),
                           "item_bias": (ItemTower, "use_bias", False)}


def test_the_model_classes_defaults_are_trainconfigs():
    config = TrainConfig()
    for field, (cls, argument) in AGREE.items():
        default = inspect.signature(cls).parameters[argument].default
        assert default == getattr(config, field), f"{cls.__name__}({argument}) vs {field}"
    for field, (cls, argument, plain) in BUILDING_BLOCK_SWITCHES.items():
        assert inspect.signature(cls).parameters[argument].default == plain, field


def test_every_field_is_documented():
    undocumented = [f.name for f in dataclasses.fields(TrainConfig)
                    if f.name not in TrainConfig.__doc__]
    assert undocumented == []
