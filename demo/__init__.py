"""The demo: a synthetic dataset, its rendered frames and a tiny CLIP pretrained on that world, so everything runs
without downloads."""
