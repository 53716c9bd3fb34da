"""TF Serving release numbers: parsing, and the release that matches this TensorFlow.

TF Serving X.Y is built with TensorFlow X.Y and has an X.Y.0 release for
every TensorFlow minor release (as tensorflow-serving-api on PyPI shows).
"""
import re
from typing import Tuple

import tensorflow as tf

from tf_profiles.errors import UserError


def parse_version(version: str) -> Tuple[int, int, int]:
    """``"2.19.0"`` → ``(2, 19, 0)``.

    Raises:
      ValueError: not three dot-separated integers.
    """
    if not re.fullmatch(r"\d+\.\d+\.\d+", version):
        raise UserError(f"version {version!r}: expected X.Y.Z, e.g. 2.19.0")
    return tuple(int(part) for part in version.split("."))


def matching_serving_version(tf_version: str = tf.__version__) -> str:
    """The TF Serving release for exports of TensorFlow ``tf_version``: X.Y.0."""
    major_minor = re.match(r"\d+\.\d+", tf_version)
    if major_minor is None:
        raise UserError(f"TensorFlow version {tf_version!r}: expected X.Y...")
    return f"{major_minor.group()}.0"
