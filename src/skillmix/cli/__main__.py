"""`python -m skillmix.cli`: the `skillmix` command, with the package loaded once."""

from skillmix.cli import entry

if __name__ == "__main__":
    entry()
