"""Installable package for tf_profiles.

The pins are the combination verified to install and run together on
Python 3.11: transformers 5.x dropped the TensorFlow classes and
TensorFlow Recommenders 0.7.7 needs Keras 2 (tf-keras).
"""
from setuptools import find_packages, setup

setup(
    name="tf_profiles",
    version="0.1.0",
    description=(
        "User profiles for recommender systems from behaviour, attributes and "
        "text: a BERT encoder feeding a TensorFlow Recommenders two-tower model."
    ),
    packages=find_packages(include=["tf_profiles", "tf_profiles.*"]),
    python_requires=">=3.10,<3.12",
    install_requires=[
        "tensorflow==2.21.0",
        "tf-keras==2.21.0",
        "tensorflow-recommenders==0.7.7",
        "transformers>=4.57,<4.58",
        "tensorflow-text>=2.21,<2.22",
        "tensorflow-serving-api==2.21.0",
        "safetensors>=0.4",
        "pandas>=2.0",
        "pyarrow>=14",
        "tensorboard>=2.16",
        "tqdm>=4.60",
        "matplotlib>=3.7",
        "scipy>=1.11",  # paired significance tests (Wilcoxon) in evaluation
    ],
    extras_require={
        # vaderSentiment: the lexicon baseline the sentiment head is compared with;
        # pytest-xdist: scripts/test.sh runs the suite on two workers.
        "test": ["pytest>=8", "pytest-xdist>=3.5", "hypothesis>=6", "vaderSentiment>=3.3"],
    },
    entry_points={"console_scripts": ["tf-profiles=tf_profiles.cli:main"]},
)
