"""Composition training data: Skill-Mix SFT sets and Instruct-SkillMix (SPEC section 6)."""
