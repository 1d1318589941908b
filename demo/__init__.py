"""The demo: a synthetic dataset, its rendered frames and a tiny random CLIP, so everything runs without downloads."""
