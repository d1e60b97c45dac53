"""ConceptMix: compositional text-to-image evaluation with controllable difficulty.

A sample is one object and k visual concepts that a catalog's rules allow together; a
text model writes the text-to-image prompt and checks it; the generator draws it; a
vision judge answers one yes/no question per concept. One module per job (this file
imports nothing, so `skillmix --help` stays light):

- `concepts`, `load`, `data/concepts.yaml`: the concept catalog (categories with roles,
  concepts, rules), its loader with file:line problems, its content hash.
- `sampling`: seeded, distinct, valid samples; `max_k`, the largest k the rules allow.
- `wording`: each concept's phrase (for the prompter) and question (for the judge).
- `prompts`, `answers`: the messages, and reading the check and yes/no replies
  (unparsed when unreadable, never "no").
- `generators`, `openai_images`, `diffusers_images`: image models behind the chat
  `Model` interface; their answer is the SHA-256 of the image they stored.
- `image_store`: image files by SHA-256 beside the run store.
- `vision`: the judge that is sent the images its requests refer to.
- `run`: the pipeline (`ImageRun`, `ImageRunConfig`) on the runtime's worker pool.
- `metrics`, `report`: majority vote, full marks by k, success per concept and category;
  JSON, CSV and the terminal tables.
- `agreement`: judge against people, per concept and category (percent agreement, kappa).
- `thumbnails`, `html`, `templates/`: the self-contained HTML page (images as data URLs).
- `review`: the review app's queue of images and its answers (`skillmix review RUN`).

What a run stores, for the report, an HTML page and the review app (all by `run_id`):

- `runs` row: `config` has `kind: "image"`, the model specs, `k`, `items`,
  `grading_rounds`, `catalog_hash` (of the concept catalog), `prompts` (template version).
- records (`Store.records(run_id, kind)`), one per sample (key: the item id) except the
  catalog: `image.catalog` (key "catalog"), `image.item` (the sample, its phrases and
  questions), `image.prompt` (the prompt, every attempt and its check), `image.image`
  (the image's sha256 and `file`) and `image.grade` (per concept: question, each round's
  raw reply and parsed answer, votes, decision; the image's full marks). `image.run`'s
  docstring lists every field.
- `calls` rows, role `prompter`, `checker`, `generator` or `judge`; a judge call's stored
  messages refer to the image as `sha256:<hex>` in an `image_url` part.
- image files: `ImageStore.beside(store).find(sha256)` (or `image_store.images_folder`
  joined with the record's `file`).

A person's verdict on a concept fits `human_verdicts` with `item_id`, `gen_round` 0 and
the concept id as `criterion` (the layout the text review app uses).
"""
