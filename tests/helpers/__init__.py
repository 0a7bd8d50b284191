"""Test helpers: tiny Model2Vec models built in tests, and parity measurements against model2vec."""
