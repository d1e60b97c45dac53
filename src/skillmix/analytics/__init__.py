"""Skill analytics: corpus frequency of skills (the common-skill filter)."""
