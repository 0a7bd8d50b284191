"""m2v-edge benchmark against model2vec, fastembed and the bare tokenizer pass (`python -m bench`).

Kept outside the installed package: nothing under `m2v_edge/` imports it. This file imports nothing so that
`bench/child.py`, which measures cold starts, starts from the standard library alone.
"""
