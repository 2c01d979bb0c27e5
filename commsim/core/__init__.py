"""The lowest layer: contracts and services every block uses (no imports from the rest of commsim:
``tests/test_layers.py`` checks it).

- ``codec``: the codec contract (encode images to bits, decode channel LLRs to images).
- ``registry``: the registries of codecs, channels, data sets, source and channel codes (names -> factories).
- ``catalog``: the generated list of registered names (``catalog.json``) that the CLI reads instead of the registries.
- ``cache``: the one on-disk cache (checkpoints, fitted source codes): folder, entry names, per-entry locks, bad entries skipped.
- ``files``: atomic file writes, writability checks before work, the one-writer lock of result files.
- ``images``: image grids written as PNG.
- ``metrics``: distortion and error metrics with counts and 95 % confidence intervals.
- ``device``: device selection (``auto``: CUDA when available, else the CPU).
- ``machine``: facts about this machine (available memory) that checks before work compare with.
- ``threads``: how many CPU threads torch may use.
- ``workers``: worker processes that die with the process that started them.
"""
