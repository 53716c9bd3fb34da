"""`tf-profiles train` as a script.

    python training/train.py --interactions F --items F --output DIR
"""
import sys

from tf_profiles.cli import main

if __name__ == "__main__":
    sys.exit(main(["train", *sys.argv[1:]]))
