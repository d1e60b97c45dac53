"""`python -m skillmix.config > docs/config.md`: the reference of every run setting."""

from skillmix.config.reference import config_reference

print(config_reference(), end="")
