"""Skills for reasoning on real math data: problems, answer checking, labelling, evaluation.

The data layer lives in two modules, imported by name (this file stays light so that
`skillmix --help` never loads sympy or pyarrow):

- `skillmix.math.problems`: `MathProblem`, `MathDataset`, `load_dataset` (CHAMP from the
  `champ-dataset` wheel, or the user's JSONL/JSON/CSV/Parquet file or a Hugging Face
  dataset saved to disk), `leak_check`; `skillmix.math.champ` reads CHAMP itself and the
  model answers recorded in it.
- `skillmix.math.answers`: `extract_final_answer` and `check_answer` (math-verify, with a
  plain-text fallback that says so).
"""
