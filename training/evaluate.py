"""`tf-profiles evaluate` as a script: python training/evaluate.py --model DIR."""
import sys

from tf_profiles.cli import main

if __name__ == "__main__":
    sys.exit(main(["evaluate", *sys.argv[1:]]))
